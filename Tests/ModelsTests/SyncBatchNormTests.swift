import Foundation
import Testing
@testable import Models

/// An in-process stand-in for an MPI allreduce between two threads ("ranks"): each call
/// blocks until both ranks made it, then both get the elementwise sum (rank 0's part first).
final class TwoRankReducer: @unchecked Sendable {
    let condition = NSCondition()
    var parts: [[Double]] = [[], []]
    var arrived = 0
    var generation = 0
    var result: [Double] = []
    var calls = 0

    final class Rank: BatchStatisticsReducer {
        let shared: TwoRankReducer, rank: Int
        init(_ shared: TwoRankReducer, _ rank: Int) { self.shared = shared; self.rank = rank }
        func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { shared.sum(values, count: count, rank: rank) }
    }

    func sum(_ values: UnsafeMutablePointer<Double>, count: Int, rank: Int) {
        condition.lock()
        defer { condition.unlock() }
        parts[rank] = Array(UnsafeBufferPointer(start: values, count: count))
        arrived += 1
        let mine = generation
        if arrived == 2 {
            precondition(parts[0].count == parts[1].count, "ranks reduced different counts")
            result = zip(parts[0], parts[1]).map { $0 + $1 }
            arrived = 0
            generation += 1
            calls += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        for i in 0..<count { values[i] = result[i] }
    }

    /// Runs `body(rank)` on two threads and waits for both.
    static func run(_ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchSemaphore(value: 0)
        for rank in 0..<2 {
            let t = Thread { body(rank); done.signal() }
            t.start()
        }
        done.wait(); done.wait()
    }
}

/// Cross-rank BatchNorm: two ranks of B/2 rows with a summing reducer compute what one rank
/// of B rows computes.
struct SyncBatchNormTests {
    final class Results: @unchecked Sendable {
        var y: [[Float]] = [[], []], dx: [[Float]] = [[], []], grads: [[Float]] = [[], []]
    }

    @Test("split batch with a reducer equals the whole batch (1-D and 2-D)", arguments: [TensorShape.flat(5), TensorShape(3, 4, 5)])
    func splitEqualsWhole(shape: TensorShape) {
        let rows = 8, half = rows / 2, n = shape.count
        let x = LayerHarness.random(rows * n, seed: 41, lo: -2, hi: 3)
        let dy = LayerHarness.random(rows * n, seed: 43)
        let whole = LayerHarness(.batchNorm, input: shape, rows: rows, seed: 9)
        let yWhole = whole.forward(x)
        let dxWhole = whole.backward(x, dy: dy)
        let gWhole = whole.grads.toArray()

        let shared = TwoRankReducer()
        let results = Results()
        let halves = (0..<2).map { _ in LayerHarness(.batchNorm, input: shape, rows: half, seed: 9) }
        TwoRankReducer.run { rank in
            let h = halves[rank]
            let reducer = TwoRankReducer.Rank(shared, rank)
            let xs = Array(x[(rank * half * n)..<((rank + 1) * half * n)])
            let dys = Array(dy[(rank * half * n)..<((rank + 1) * half * n)])
            results.y[rank] = h.forward(xs, reducer: reducer)
            results.dx[rank] = h.backward(xs, dy: dys, reducer: reducer)
            results.grads[rank] = h.grads.toArray()
        }
        // forward, forward (inside backward), backward: three reductions.
        #expect(shared.calls == 3)
        func close(_ a: [Float], _ b: [Float]) -> Bool {
            let num = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let den = b.reduce(0.0) { $0 + Double($1) * Double($1) }
            return (num / den).squareRoot() < 1e-5
        }
        #expect(close(results.y[0] + results.y[1], yWhole))
        #expect(close(results.dx[0] + results.dx[1], dxWhole))
        // Weight and bias gradients are per-rank sums: the gradient allreduce adds them.
        #expect(close(zip(results.grads[0], results.grads[1]).map { $0 + $1 }, gWhole))

        // Without a reducer each half normalizes by its own statistics: a different result.
        let alone = LayerHarness(.batchNorm, input: shape, rows: half, seed: 9)
        #expect(!close(alone.forward(Array(x[0..<(half * n)])), Array(yWhole[0..<(half * n)])))
    }
}
