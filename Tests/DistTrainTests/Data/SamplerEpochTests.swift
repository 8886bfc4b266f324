import Testing
@testable import DistTrain

// The stratified sampler's per-label slot counts, max(1, floor(b * n_k / n)), and its fresh
// per-label shuffle every epoch (which samples share a batch changes from epoch to epoch, not
// only their order inside it).

@Suite("sampler: per-label slot counts and the per-epoch reshuffle")
struct SamplerEpochTests {
    /// Labels with `counts[k]` samples of label k, interleaved (0, 1, 2, ..., 0, 1, ...) until
    /// each label runs out.
    static func labels(_ counts: [Int]) -> [UInt8] {
        var left = counts, out: [UInt8] = []
        while left.contains(where: { $0 > 0 }) {
            for k in left.indices where left[k] > 0 { out.append(UInt8(k)); left[k] -= 1 }
        }
        return out
    }

    /// Label counts of every batch of an epoch.
    static func batchCounts(_ order: [Int32], labels: [UInt8], batch: Int, classes: Int) -> [[Int]] {
        stride(from: 0, to: order.count, by: batch).map { start in
            var c = [Int](repeating: 0, count: classes)
            for i in order[start..<start + batch] { c[Int(labels[Int(i)])] += 1 }
            return c
        }
    }

    @Test("each label gets max(1, floor(b n_k / n)) slots in every batch", arguments: [
        ([30, 30, 30, 30], 8),      // balanced, no free slot
        ([50, 30, 15, 5], 10),      // 5, 3, 1, max(1, 0): exactly b
        ([50, 30, 15, 5], 16),      // 8, 4, 2, 1: one free slot
        ([400, 100, 7], 20),        // 15, 3, max(1, 0): one free slot
        ([90, 60, 45, 33, 21, 12], 25),
    ])
    func slotCounts(counts: [Int], batch: Int) throws {
        let labels = Self.labels(counts)
        let n = labels.count
        let expected = counts.map { max(1, batch * $0 / n) }
        try #require(expected.reduce(0, +) <= batch, "test case: quotas must fit the batch")
        let sampler = try StratifiedSampler(labels: labels, classes: counts.count, localBatch: batch, seed: 3, rank: 0)
        #expect(sampler.quota == expected)
        #expect(sampler.steps > 0)
        let free = batch - expected.reduce(0, +)
        for epoch in 0..<3 {
            let batches = Self.batchCounts(sampler.order(epoch: epoch), labels: labels, batch: batch, classes: counts.count)
            #expect(batches.count == sampler.steps)
            for (s, c) in batches.enumerated() {
                #expect(c.reduce(0, +) == batch)
                for k in counts.indices {
                    // Never fewer than the quota; more only through the free slots.
                    #expect(c[k] >= expected[k] && c[k] <= expected[k] + free,
                            "epoch \(epoch) batch \(s): \(c[k]) of label \(k), quota \(expected[k]), \(free) free")
                }
            }
            if free == 0 { #expect(batches.allSatisfy { $0 == expected }) }
        }
    }

    @Test("a new epoch regroups the samples: batches are not the last epoch's, reordered")
    func reshufflePerEpoch() throws {
        // 4 labels x 30 samples, batch 8: quota 2 per label, no free slot, 15 steps, so every
        // sample is used every epoch and only the per-label shuffle decides who shares a batch.
        let labels = Self.labels([30, 30, 30, 30])
        for rank in 0..<2 {
            let sampler = try StratifiedSampler(labels: labels, classes: 4, localBatch: 8, seed: 11, rank: rank)
            try #require(sampler.steps == 15 && sampler.quota == [2, 2, 2, 2])
            var previous: [Set<Int32>]? = nil
            var previousBatchOf: [Int32: Int] = [:]
            for epoch in 0..<4 {
                let order = sampler.order(epoch: epoch)
                #expect(Set(order).count == 120, "every sample once per epoch")
                let batches = stride(from: 0, to: 120, by: 8).map { Set(order[$0..<$0 + 8]) }
                var batchOf: [Int32: Int] = [:]
                for (s, b) in batches.enumerated() { for i in b { batchOf[i] = s } }
                if let previous {
                    let repeated = batches.filter(previous.contains).count
                    #expect(repeated == 0, "epoch \(epoch) repeats \(repeated) of epoch \(epoch - 1)'s 15 batches (rank \(rank))")
                    // A sample's batch index is about uniform over 15: staying put ~1/15 of the time.
                    let stayed = batchOf.filter { previousBatchOf[$0.key] == $0.value }.count
                    #expect(stayed < 30, "\(stayed) of 120 samples in the same batch as in epoch \(epoch - 1) (rank \(rank))")
                }
                previous = batches
                previousBatchOf = batchOf
            }
        }
    }

    @Test("within an epoch a label's samples are drawn in shuffled order, not index order")
    func labelOrderIsShuffled() throws {
        let labels = Self.labels([30, 30, 30, 30])
        let sampler = try StratifiedSampler(labels: labels, classes: 4, localBatch: 8, seed: 5, rank: 0)
        let order = sampler.order(epoch: 0)
        for k in 0..<4 {
            // The batch index of each label-k sample, in sample-index order: sorted would mean
            // batch s takes the label's samples 2s and 2s + 1 (no shuffle).
            let mine = (0..<120).filter { labels[$0] == k }
            let batchIndex = mine.map { i in order.firstIndex(of: Int32(i))! / 8 }
            #expect(batchIndex != batchIndex.sorted(), "label \(k): its samples fill the batches in index order")
        }
    }
}
