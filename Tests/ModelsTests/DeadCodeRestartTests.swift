import Foundation
import Testing
@testable import Models

/// Dead-code restart: a code no position chose for `restartSteps` forwards takes one of the
/// batch's encoder outputs, a used code keeps its vector, and two ranks of half the rows (sums
/// through an in-process reducer) end bitwise where one process of all the rows ends.
struct DeadCodeRestartTests {
    static let rows = 4, codes = 6, D = 3, S = 4, restartSteps = 2

    /// A quantizer whose codes 3..<6 sit far (50+) from every z_e, so no position ever picks
    /// them; codes 0..<3 spread over [-1, 1]. Returns it with its parameter and state buffers.
    static func quantizer(ema: Float) -> (VectorQuantizer, FloatBuffer, FloatBuffer) {
        var builder = LayerBuilder()
        _ = builder.parameters.reserve(5)  // offsets other than 0
        _ = builder.state.reserve(3)
        let q = VectorQuantizer(codes: codes, dimension: D, positions: S, commitment: 0.25, emaDecay: ema,
                                restartSteps: restartSteps, builder: &builder)
        let params = FloatBuffer(count: builder.parameters.totalCount), state = FloatBuffer(count: builder.state.totalCount)
        let book = (ema > 0 ? state.base : params.base) + q.codebookOffset
        var rng = SplitMix64(seed: 4)
        for k in 0..<codes {
            for d in 0..<D { book[k * D + d] = k < 3 ? rng.uniform(-1, 1) : 50 + Float(k * D + d) }
        }
        if ema > 0 {
            for k in 0..<codes { state.base[q.clusterSizeOffset + k] = 2 }
        }
        return (q, params, state)
    }

    /// z_e [B, D, S] of the test batch.
    static let zE: [Float] = {
        var rng = SplitMix64(seed: 11)
        return (0..<(rows * D * S)).map { _ in rng.uniform(-1, 1) }
    }()

    /// `steps` forwards over rows `offset..<offset + count` of the batch, each followed by a
    /// restart keyed by its step; returns the codes chosen at each step and how many restarted.
    static func train(_ q: VectorQuantizer, _ params: FloatBuffer, _ state: FloatBuffer, steps: Int, offset: Int, count: Int,
                      reducer: (any BatchStatisticsReducer)?) -> (codes: [[Int32]], restarted: [[Int32]]) {
        let book = q.usesEMA ? state.base + q.codebookOffset : params.base + q.codebookOffset
        let scratch = FloatBuffer(count: q.scratchCount)
        let restartScratch = UnsafeMutablePointer<Double>.allocate(capacity: q.restartScratchCount)
        let restarted = UnsafeMutablePointer<Int32>.allocate(capacity: codes)
        defer { restartScratch.deallocate(); restarted.deallocate() }
        var chosen: [[Int32]] = [], reseeded: [[Int32]] = []
        let local = Array(zE[(offset * D * S)..<((offset + count) * D * S)])
        for step in 0..<steps {
            var indices = [Int32](repeating: -1, count: count * S)
            var zQ = [Float](repeating: 0, count: count * D * S)
            local.withUnsafeBufferPointer { z in
                _ = q.forward(codebook: book, zE: z.baseAddress!, zQ: &zQ, zqStride: D * S, codeIndices: &indices, rows: count,
                              rowLoss: nil, counts: nil, scratch: scratch.base)
                let n = q.restartDeadCodes(params: params.base, state: state.base, zE: z.baseAddress!, codeIndices: indices,
                                           rows: count, rowOffset: offset, globalRows: rows, key: 1000 + UInt64(step),
                                           reducer: reducer, scratch: restartScratch, restarted: restarted)
                reseeded.append(Array(UnsafeBufferPointer(start: restarted, count: n)))
            }
            chosen.append(indices)
        }
        return (chosen, reseeded)
    }

    @Test("a code unused for N forwards takes one of the batch's z_e (EMA: N_k = 1, m_k = it); used codes keep theirs", arguments: [Float(0), 0.9])
    func restartsOnlyDeadCodes(ema: Float) {
        let (q, params, state) = Self.quantizer(ema: ema)
        let bookOf = { (q.usesEMA ? state.base : params.base) + q.codebookOffset }
        let before = Array(UnsafeBufferPointer(start: bookOf(), count: Self.codes * Self.D))
        let run = Self.train(q, params, state, steps: 3, offset: 0, count: Self.rows, reducer: nil)
        // Step 1: every code unused once: idle 1 < N, nothing restarted.
        #expect(run.restarted[0].isEmpty)
        // Step 2: the codes unused at steps 1 and 2 (the far ones among them) are restarted.
        let used = Set(run.codes[0] + run.codes[1])
        let dead = (0..<Int32(Self.codes)).filter { !used.contains($0) }
        #expect(run.restarted[1] == dead)
        #expect(dead.contains(3) && dead.contains(4) && dead.contains(5))
        let book = bookOf()
        // The first restart is the last change of the codebook here (step 3 cannot restart again).
        #expect(run.restarted[2].isEmpty)
        for k in 0..<Self.codes {
            let vector = Array(UnsafeBufferPointer(start: book + k * Self.D, count: Self.D))
            if dead.contains(Int32(k)) {
                let isInput = (0..<Self.rows).contains { r in
                    (0..<Self.S).contains { s in (0..<Self.D).allSatisfy { d in Self.zE[r * Self.D * Self.S + d * Self.S + s] == vector[d] } }
                }
                #expect(isInput, "code \(k) must be re-seeded with one of the batch's z_e, got \(vector)")
                // Idle again from 0 after the restart: 0 if step 3 chose it, else 1.
                #expect(state.base[q.idleOffset + k] == (run.codes[2].contains(Int32(k)) ? 0 : 1))
                if q.usesEMA {
                    #expect(state.base[q.clusterSizeOffset + k] == 1)
                    #expect((0..<Self.D).allSatisfy { state.base[q.embedSumOffset + k * Self.D + $0] == vector[$0] })
                }
            } else {
                #expect(vector == Array(before[(k * Self.D)..<((k + 1) * Self.D)]), "used code \(k) must keep its vector")
            }
        }
        // A re-seeded code sits on a z_e of the batch, so it is chosen at the next step.
        #expect(run.codes[2].contains { dead.contains($0) })
    }

    final class Outcome: @unchecked Sendable { var params: [[Float]] = [[], []], state: [[Float]] = [[], []] }

    @Test("two ranks of half the rows, counts and candidates summed across them, end bitwise as one process", arguments: [Float(0), 0.9])
    func twoRanksMatchOneProcess(ema: Float) {
        let (q, params, state) = Self.quantizer(ema: ema)
        let single = Self.train(q, params, state, steps: 3, offset: 0, count: Self.rows, reducer: nil)
        #expect(!single.restarted[1].isEmpty)
        let shared = TwoRankReducer(), outcome = Outcome()
        TwoRankReducer.run { rank in
            let (rq, rp, rs) = Self.quantizer(ema: ema)
            let half = Self.rows / 2
            _ = Self.train(rq, rp, rs, steps: 3, offset: rank * half, count: half, reducer: TwoRankReducer.Rank(shared, rank))
            outcome.params[rank] = rp.toArray()
            outcome.state[rank] = rs.toArray()
        }
        for rank in 0..<2 {
            #expect(outcome.params[rank] == params.toArray(), "rank \(rank) parameters")
            #expect(outcome.state[rank] == state.toArray(), "rank \(rank) state")
        }
    }
}
