import Models

/// Draws each epoch's local batches so that every batch holds every label.
///
/// Each label k gets a quota of max(1, floor(b * n_k / n)) slots per batch (n_k of the shard's
/// n samples have label k); the remaining slots are filled from the leftover samples of all
/// labels. Order comes from a generator seeded by (seed, epoch, rank), so it is reproducible
/// and needs no saved state. No sample appears twice in an epoch.
///
/// A shard supports at most `maxSteps` such batches per epoch (a rare label runs out first
/// when the local batch is close to the class count); the trainer takes the minimum over
/// ranks and the plan's step count, so every rank runs the same number of steps.
public struct StratifiedSampler: Sendable {
    public let localBatch: Int
    /// Steps per epoch this sampler draws.
    public var steps: Int
    /// The most steps per epoch this shard can fill with every label in every batch.
    public let maxSteps: Int
    /// Shard-local indices of each label.
    let byLabel: [[Int32]]
    let quota: [Int]
    let seed: UInt64
    let rank: Int

    public init(labels: [UInt8], classes: Int, localBatch: Int, seed: UInt64, rank: Int) throws {
        var groups = [[Int32]](repeating: [], count: classes)
        for (i, l) in labels.enumerated() { groups[Int(l)].append(Int32(i)) }
        if let k = groups.firstIndex(where: { $0.isEmpty }) { throw BatchingError.labelMissing(rank: rank, label: k) }
        let n = labels.count
        var quota = groups.map { max(1, localBatch * $0.count / n) }
        // Quotas of rare labels were rounded up to 1; take the excess back from the largest.
        while quota.reduce(0, +) > localBatch {
            let k = quota.indices.max { quota[$0] < quota[$1] }!
            guard quota[k] > 1 else { break }
            quota[k] -= 1
        }
        precondition(quota.reduce(0, +) <= localBatch, "local batch checked against the class count")
        self.localBatch = localBatch
        self.byLabel = groups
        self.quota = quota
        self.seed = seed
        self.rank = rank
        maxSteps = min(n / localBatch, zip(groups, quota).map { $0.count / $1 }.min()!)
        steps = maxSteps
    }

    /// The epoch's batches, flattened: `steps * localBatch` shard-local indices; batch s is
    /// elements s*localBatch ..< (s+1)*localBatch.
    public func order(epoch: Int) -> [Int32] {
        var rng = SplitMix64(seed: SplitMix64.mix(seed &* 0x9E37_79B9 &+ UInt64(epoch) &* 0x1_0000_0001 &+ UInt64(rank) &+ 0xBA7C4))
        var order = [Int32](repeating: 0, count: steps * localBatch)
        var leftover: [Int32] = []
        var reserved: [[Int32]] = []
        for (k, group) in byLabel.enumerated() {
            var g = group
            rng.shuffle(&g)
            let take = steps * quota[k]
            reserved.append(Array(g[0..<take]))
            leftover.append(contentsOf: g[take...])
        }
        rng.shuffle(&leftover)
        let free = localBatch - quota.reduce(0, +)
        var next = 0
        for s in 0..<steps {
            var slot = s * localBatch
            for k in byLabel.indices {
                for q in 0..<quota[k] {
                    order[slot] = reserved[k][s * quota[k] + q]
                    slot += 1
                }
            }
            for _ in 0..<free {
                order[slot] = leftover[next]
                next += 1
                slot += 1
            }
            // Shuffle within the batch so slot position says nothing about the label.
            var i = s * localBatch + localBatch - 1
            while i > s * localBatch {
                let j = s * localBatch + rng.below(i - s * localBatch + 1)
                order.swapAt(i, j)
                i -= 1
            }
        }
        return order
    }
}
