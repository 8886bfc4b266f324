import Models

/// How a global batch and a dataset divide over ranks. Pure arithmetic, identical on every rank,
/// so all ranks agree on the step count without communicating.
public struct BatchPlan: Equatable, Sendable {
    public let globalBatch: Int
    public let world: Int
    public let samples: Int

    public init(globalBatch: Int, world: Int, samples: Int, classes: Int) throws {
        guard samples >= world else { throw BatchingError.moreRanksThanSamples(world: world, samples: samples) }
        self.globalBatch = globalBatch
        self.world = world
        self.samples = samples
        let smallest = globalBatch / world
        guard smallest >= classes else {
            throw BatchingError.localBatchTooSmall(globalBatch: globalBatch, world: world, localBatch: smallest, classes: classes)
        }
        for r in 0..<world where shard(r).count < localBatch(r) {
            throw BatchingError.shardTooSmall(rank: r, shardSize: shard(r).count, localBatch: localBatch(r))
        }
    }

    /// Rank r's contiguous slice of the dataset (sizes differ by at most one).
    public func shard(_ r: Int) -> Range<Int> { (samples * r / world)..<(samples * (r + 1) / world) }

    /// Rank r's share of the global batch; when the batch does not divide evenly the first
    /// ranks take one more, and gradients are weighted by sample counts.
    public func localBatch(_ r: Int) -> Int { globalBatch / world + (r < globalBatch % world ? 1 : 0) }

    /// Steps per epoch: the most every rank can take with full local batches.
    public var stepsPerEpoch: Int { (0..<world).map { shard($0).count / localBatch($0) }.min()! }
}
