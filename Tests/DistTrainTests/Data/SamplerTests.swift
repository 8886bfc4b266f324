import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO

struct SamplerTests {
    /// Labels with a skewed class distribution (label k has weight k + 5: label 9 is 2.8 times as common as label 0).
    static func skewedLabels(_ n: Int, classes: Int) -> [UInt8] {
        var rng = SplitMix64(seed: 42)
        let weights = (0..<classes).map { $0 + 5 }
        let total = weights.reduce(0, +)
        return (0..<n).map { _ in
            var u = rng.below(total)
            for (k, w) in weights.enumerated() { if u < w { return UInt8(k) }; u -= w }
            return UInt8(classes - 1)
        }
    }

    @Test("every batch holds every label and no sample repeats within an epoch", arguments: [1, 2, 3, 4, 7])
    func stratification(world: Int) throws {
        let labels = Self.skewedLabels(6000, classes: 10)
        let plan = try BatchPlan(globalBatch: 256, world: world, samples: labels.count, classes: 10)
        for rank in 0..<world {
            let shard = Array(labels[plan.shard(rank)])
            let b = plan.localBatch(rank)
            let sampler = try StratifiedSampler(labels: shard, classes: 10, localBatch: b, seed: 3, rank: rank)
            #expect(sampler.maxSteps == plan.stepsPerEpoch)
            for epoch in 0..<2 {
                let order = sampler.order(epoch: epoch)
                #expect(order.count == plan.stepsPerEpoch * b)
                #expect(Set(order).count == order.count, "a sample repeats in epoch \(epoch) on rank \(rank)")
                #expect(order.allSatisfy { $0 >= 0 && Int($0) < shard.count })
                for s in 0..<plan.stepsPerEpoch {
                    let present = Set(order[(s * b)..<((s + 1) * b)].map { shard[Int($0)] })
                    #expect(present.count == 10, "rank \(rank) epoch \(epoch) batch \(s) misses labels")
                }
            }
        }
    }

    @Test("order is reproducible and differs across epochs and ranks")
    func determinism() throws {
        let labels = Self.skewedLabels(3000, classes: 10)
        let a = try StratifiedSampler(labels: labels, classes: 10, localBatch: 50, seed: 9, rank: 0)
        let b = try StratifiedSampler(labels: labels, classes: 10, localBatch: 50, seed: 9, rank: 0)
        let c = try StratifiedSampler(labels: labels, classes: 10, localBatch: 50, seed: 9, rank: 1)
        #expect(a.order(epoch: 4) == b.order(epoch: 4))
        #expect(a.order(epoch: 4) != a.order(epoch: 5))
        #expect(a.order(epoch: 4) != c.order(epoch: 4))
    }

    @Test("uneven splits: every rank gets the same number of steps (60000 over 7 ranks)")
    func unevenSplits() throws {
        let plan = try BatchPlan(globalBatch: 256, world: 7, samples: 60000, classes: 10)
        #expect((0..<7).map(plan.localBatch).reduce(0, +) == 256)
        #expect((0..<7).map { plan.shard($0).count }.reduce(0, +) == 60000)
        #expect(plan.stepsPerEpoch == 8571 / 37)
        for r in 0..<7 { #expect(plan.shard(r).count >= plan.stepsPerEpoch * plan.localBatch(r)) }
        // Contiguous, non-overlapping shards.
        for r in 1..<7 { #expect(plan.shard(r).lowerBound == plan.shard(r - 1).upperBound) }
    }

    @Test("a rare label shortens the epoch instead of breaking stratification")
    func rareLabelShortensEpoch() throws {
        // Label 9 occurs twice: batches of 10 with one of each label, so at most 2 batches.
        var labels = (0..<400).map { UInt8($0 % 9) }
        labels[0] = 9; labels[1] = 9
        let s = try StratifiedSampler(labels: labels, classes: 10, localBatch: 10, seed: 0, rank: 0)
        #expect(s.maxSteps == 2)
        let order = s.order(epoch: 0)
        #expect(order.count == 20)
        for b in 0..<2 { #expect(Set(order[(b * 10)..<(b * 10 + 10)].map { labels[Int($0)] }).count == 10) }
    }

    @Test("impossible splits are refused with a clear reason")
    func refusals() {
        #expect(throws: BatchingError.localBatchTooSmall(globalBatch: 64, world: 8, localBatch: 8, classes: 10)) {
            try BatchPlan(globalBatch: 64, world: 8, samples: 60000, classes: 10)
        }
        #expect(throws: BatchingError.moreRanksThanSamples(world: 8, samples: 5)) {
            try BatchPlan(globalBatch: 256, world: 8, samples: 5, classes: 10)
        }
        #expect(throws: BatchingError.shardTooSmall(rank: 0, shardSize: 100, localBatch: 128)) {
            try BatchPlan(globalBatch: 256, world: 2, samples: 200, classes: 10)
        }
        // A label absent from a shard can never be in every batch.
        let nine = (0..<400).map { UInt8($0 % 9) }
        #expect(throws: BatchingError.labelMissing(rank: 3, label: 9)) {
            try StratifiedSampler(labels: nine, classes: 10, localBatch: 40, seed: 0, rank: 3)
        }
        let message = BatchingError.localBatchTooSmall(globalBatch: 64, world: 8, localBatch: 8, classes: 10).description
        #expect(message.contains("every label"))
    }
}
