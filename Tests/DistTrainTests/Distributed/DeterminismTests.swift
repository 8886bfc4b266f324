import Foundation
import Logging
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// Deterministic mode (runtime.deterministic): the fixed-point sum, the virtual-shard sampler
/// and whole training runs on in-process ranks, which must give the same bits at any world size.
@Suite struct DeterminismTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    // MARK: Fixed point

    /// Deterministic pseudo-random floats over many magnitudes (and some exact zeros).
    static func terms(_ count: Int, length: Int, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            (0..<length).map { j in
                if j % 13 == 0 { return 0 }
                let u = Float(rng.next() % 1_000_000) / 1_000_000 - 0.5
                return u * Float(sign: .plus, exponent: Int(rng.next() % 20) - 15, significand: 1)
            }
        }
    }

    @Test("fixed-point sum: the same bits for any order and any grouping of the terms")
    func fixedPointOrderFree() {
        let terms = Self.terms(24, length: 257, seed: 5)
        let reference = FixedPoint.sum(terms)
        var rng = SplitMix64(seed: 9)
        for _ in 0..<10 {
            var shuffled = terms
            rng.shuffle(&shuffled)
            #expect(FixedPoint.sum(shuffled).map(\.bitPattern) == reference.map(\.bitPattern))
        }
        // Grouped as ranks would hold them: partial integer sums at the common scale, added in another order.
        let bits = terms.map { t in t.withUnsafeBufferPointer { FixedPoint.largestMagnitude($0.baseAddress!, count: t.count) } }.max()!
        let shift = FixedPoint.shift(maxBits: bits)
        for groups in [1, 2, 3, 4, 6, 8] {
            var partial = [[Int64]](repeating: [Int64](repeating: 0, count: 257), count: groups)
            for (i, t) in terms.enumerated() {
                let g = i * groups / terms.count
                t.withUnsafeBufferPointer { src in partial[g].withUnsafeMutableBufferPointer { FixedPoint.accumulate(src.baseAddress!, into: $0.baseAddress!, count: 257, shift: shift) } }
            }
            var total = [Int64](repeating: 0, count: 257)
            for g in partial.indices.reversed() { for j in 0..<257 { total[j] &+= partial[g][j] } }
            var out = [Float](repeating: 0, count: 257)
            total.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { FixedPoint.dequantize(s.baseAddress!, into: $0.baseAddress!, count: 257, shift: shift) } }
            #expect(out.map(\.bitPattern) == reference.map(\.bitPattern), "\(groups) groups")
        }
    }

    @Test("fixed-point sum: within a few float ulps of the float64 sum, exact on exactly representable sums")
    func fixedPointAccuracy() {
        let terms = Self.terms(24, length: 300, seed: 77)
        let sum = FixedPoint.sum(terms)
        let largest = terms.flatMap { $0 }.map { abs($0) }.max()!
        for j in 0..<300 {
            let exact = terms.reduce(0.0) { $0 + Double($1[j]) }
            // Each term is rounded to 2^-49 of the largest magnitude; the result to float.
            let bound = 24 * Double(largest) * 0x1p-49 + abs(exact) * 0x1p-24
            #expect(abs(Double(sum[j]) - exact) <= bound, "element \(j): \(sum[j]) vs \(exact)")
        }
        #expect(FixedPoint.sum([[1.5, -2, 0.25], [0.5, 2, 0.75], [3, 0, -1]]) == [5, 0, 0])
        #expect(FixedPoint.sum([[0, 0], [0, 0]]) == [0, 0])
        let poisoned = FixedPoint.sum([[1, .nan], [2, 3]])
        #expect(poisoned.allSatisfy { $0.isNaN }, "a NaN poisons the tensor")
        #expect(FixedPoint.sum([[Float.leastNonzeroMagnitude], [Float.leastNonzeroMagnitude]]) == [2 * .leastNonzeroMagnitude])
    }

    @Test("int64 sum and max collectives, in-process", arguments: [1, 2, 3, 4])
    func int64Collectives(ranks: Int) throws {
        try LocalCommunicator.run(ranks: ranks) { comm in
            let n = 5
            let b = UnsafeMutablePointer<Int64>.allocate(capacity: n)
            defer { b.deallocate() }
            for i in 0..<n { b[i] = Int64(1) << 60 / Int64(ranks) * Int64(i == 0 ? 1 : 0) + Int64(comm.rank * 10 + i) - 7 }
            comm.allreduceSum(b, count: n)
            let rankSum = Int64((0..<ranks).reduce(0) { $0 + $1 * 10 })
            #expect(b[0] == (Int64(1) << 60 / Int64(ranks)) * Int64(ranks) + rankSum - 7 * Int64(ranks))
            for i in 1..<n { #expect(b[i] == rankSum + Int64(ranks * (i - 7))) }
            for i in 0..<n { b[i] = Int64(comm.rank == i % ranks ? 100 + i : -i) }
            comm.allreduceMax(b, count: n)
            for i in 0..<n { #expect(b[i] == Int64(100 + i)) }
        }
    }

    // MARK: Virtual shards and the sampler

    /// Labels with uneven class frequencies (like MNIST's), 6000 records.
    static let labels: [UInt8] = {
        var rng = SplitMix64(seed: 3)
        return (0..<6000).map { _ in UInt8(min(rng.below(11), 9)) }
    }()

    /// The global records of every step of an epoch at `world` ranks: [step][piece] -> records.
    static func batches(world: Int, globalBatch: Int, epoch: Int) throws -> [[[Int]]] {
        let shards = try VirtualShards(globalBatch: globalBatch, world: world, samples: labels.count, classes: 10)
        var perRank: [(PieceSampler, Int)] = []
        var steps = Int.max
        for r in 0..<world {
            let records = shards.records(rank: r, of: labels.count)
            let s = try PieceSampler(labels: Array(labels[records]), classes: 10, shards: shards, rank: r, seed: 17)
            perRank.append((s, records.lowerBound))
            steps = min(steps, s.maxSteps)
        }
        var out = [[[Int]]](repeating: [], count: steps)
        for (r, (sampler, first)) in perRank.enumerated() {
            var s = sampler
            s.steps = steps
            let order = s.order(epoch: epoch)
            for t in 0..<steps {
                var column = 0
                for v in shards.pieces(rank: r) {
                    let rows = shards.pieceRows(v)
                    out[t].append((0..<rows).map { Int(order[t * s.localBatch + column + $0]) + first })
                    column += rows
                }
            }
        }
        return out
    }

    @Test("sampler purity: the same records in the same pieces at 1, 2, 3, 4, 6 and 8 ranks; every piece holds every label")
    func samplerPurity() throws {
        for epoch in [0, 3] {
            let one = try Self.batches(world: 1, globalBatch: 250, epoch: epoch)
            #expect(one.count > 10)
            for world in [2, 3, 4, 6, 8] {
                let many = try Self.batches(world: world, globalBatch: 250, epoch: epoch)
                #expect(many == one, "world \(world), epoch \(epoch)")
            }
            var seen = Set<Int>()
            for step in one {
                #expect(step.count == VirtualShards.count && step.map(\.count).reduce(0, +) == 250)
                for (v, piece) in step.enumerated() {
                    #expect(Set(piece.map { Self.labels[$0] }).count == 10, "piece \(v) misses a label")
                    #expect(piece.allSatisfy { VirtualShards.shard(v, of: Self.labels.count).contains($0) })
                    for i in piece { #expect(seen.insert(i).inserted, "record \(i) twice in an epoch") }
                }
            }
        }
        #expect(try Self.batches(world: 1, globalBatch: 250, epoch: 0) != (try Self.batches(world: 1, globalBatch: 250, epoch: 1)))
    }

    @Test("virtual shards refuse world sizes that do not divide 24 (usage error) and pieces smaller than the classes")
    func refusals() {
        for world in [5, 7, 9, 16] {
            #expect(throws: DeterminismError.worldSize(world)) {
                try VirtualShards(globalBatch: 480, world: world, samples: 6000, classes: 10)
            }
        }
        #expect(ExitStatus.of(DeterminismError.worldSize(5)) == .usage)
        #expect(throws: DeterminismError.batchTooSmall(globalBatch: 200, classes: 10)) {
            try VirtualShards(globalBatch: 200, world: 2, samples: 6000, classes: 10)
        }
        #expect(ExitStatus.of(DeterminismError.batchTooSmall(globalBatch: 200, classes: 10)) == .badInput)
        let s = try? VirtualShards(globalBatch: 250, world: 3, samples: 6000, classes: 10)
        #expect(s?.pieces(rank: 1) == 8..<16 && s?.pieceRows(9) == 11 && s?.pieceRows(10) == 10)
        #expect(s?.localBatch(rank: 0) == 88 && s?.records(rank: 2, of: 6000) == 4000..<6000)
    }

    @Test("a mid-epoch checkpoint continues its epoch on another world size in deterministic mode only")
    func midEpochResume() {
        var then = TrainerState()
        then.worldSize = 4
        then.globalBatch = 256
        then.stepInEpoch = 7
        var now = TrainerState()
        now.worldSize = 2
        now.globalBatch = 256
        #expect(then.midEpochChange(to: now) != nil)
        #expect(then.midEpochChange(to: now, batchesDependOnWorld: false) == nil)
        now.globalBatch = 512
        #expect(then.midEpochChange(to: now, batchesDependOnWorld: false) != nil)
    }

    // MARK: Training

    /// Parameters and BatchNorm state after `steps` deterministic steps on `ranks` in-process ranks.
    func train(ranks: Int, steps: Int, dir: String, threads: Int = 1,
               mutate: @escaping @Sendable (inout TrainConfig) throws -> Void = { _ in }) throws -> [Float] {
        let out = LocalCommunicatorTests.Results(ranks)
        let quiet = self.quiet
        try LocalCommunicator.run(ranks: ranks) { comm in
            var c = Support.smallConfig(out: dir)
            c.training.globalBatch = 240
            c.training.maxSteps = steps
            c.training.epochs = 3
            c.runtime.blasThreads = threads
            c.runtime.deterministic = true
            try mutate(&c)
            let t = try Support.fitted(c, comm: comm, logger: quiet)
            out.set(comm.rank, Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count))
                + Array(UnsafeBufferPointer(start: t.modelState.base, count: t.modelState.count))
                + [Float(t.reports.last!.test.bce), Float(t.reports.last!.train.bce)])
        }
        for r in 1..<ranks { #expect(out.values[r]! == out.values[0]!, "rank \(r) differs from rank 0") }
        return out.values[0]!
    }

    /// BatchNorm and dropout between the layers (as configs/cvae-bn-dropout.json).
    static func batchNorm(_ c: inout TrainConfig) throws {
        let layers = try TrainConfig(json: try JSON.parse(#"""
            {"model": {"latent": 4, "encoder": [{"type": "linear", "out": 32}, {"type": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "p": 0.3}],
                       "decoder": [{"type": "linear", "out": 32}, {"type": "leaky_relu", "slope": 0.2}, {"type": "batchnorm"}, {"type": "dropout", "p": 0.3}, {"type": "linear", "out": 784}]}}
            """#))
        c.model = layers.model
    }

    @Test("deterministic training: the same parameters, test loss and train loss at 1, 2, 3 and 4 in-process ranks")
    func sameBitsAnyWorld() throws {
        let root = NSTemporaryDirectory() + "disttrain-det-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        // 20 steps: more than one epoch of the 4000-record set (steps per epoch: the rarest label of a piece).
        let one = try train(ranks: 1, steps: 20, dir: root + "/1")
        for ranks in [2, 3, 4] {
            let many = try train(ranks: ranks, steps: 20, dir: root + "/\(ranks)")
            #expect(many.map(\.bitPattern) == one.map(\.bitPattern), "\(ranks) ranks differ from 1 rank")
        }
        // A sharded optimizer (ZeRO-1 slices that depend on the world size) changes nothing.
        let sharded = try train(ranks: 3, steps: 20, dir: root + "/3s") { $0.runtime.shardOptimizer = true }
        #expect(sharded.map(\.bitPattern) == one.map(\.bitPattern), "3 ranks with a sharded optimizer differ from 1 rank")
        // Normal mode really does differ between 1 and 2 ranks (what the mode is for).
        let normal1 = try train(ranks: 1, steps: 20, dir: root + "/n1") { $0.runtime.deterministic = false }
        let normal2 = try train(ranks: 2, steps: 20, dir: root + "/n2") { $0.runtime.deterministic = false }
        #expect(normal1 != normal2)
    }

    @Test("deterministic training with BatchNorm and dropout: the same parameters and running statistics at 1, 2 and 4 ranks, 1 or 2 BLAS threads")
    func sameBitsBatchNorm() throws {
        let root = NSTemporaryDirectory() + "disttrain-detbn-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let one = try train(ranks: 1, steps: 12, dir: root + "/1", mutate: Self.batchNorm)
        let two = try train(ranks: 2, steps: 12, dir: root + "/2", mutate: Self.batchNorm)
        let four = try train(ranks: 4, steps: 12, dir: root + "/4", threads: 2, mutate: Self.batchNorm)
        let threads = try train(ranks: 1, steps: 12, dir: root + "/1t", threads: 2, mutate: Self.batchNorm)
        #expect(two.map(\.bitPattern) == one.map(\.bitPattern))
        #expect(four.map(\.bitPattern) == one.map(\.bitPattern))
        #expect(threads.map(\.bitPattern) == one.map(\.bitPattern))
        #expect(one.contains { $0 != 0 && $0 != 1 }, "running statistics moved")
    }
}
