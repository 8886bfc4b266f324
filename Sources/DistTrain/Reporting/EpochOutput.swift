/// One finished (or interrupted) epoch, as every epoch-end output sees it.
public struct FinishedEpoch: Sendable {
    public let report: EpochReport
    /// Epochs the run was configured for (for "epoch 3/50" and the last grid).
    public let totalEpochs: Int
    public let worldSize: Int
    public let globalBatch: Int
    public let klWeight: Double
    public let lr: Double
    /// [gumbel] Test NMI of argmax q(c|x) against the labels (categorical models only).
    public let testNMI: Double?
    /// Codebook perplexity and codes used over the epoch's training assignments, all ranks
    /// (VQ-VAE only).
    public var codebook: CodebookUsage? = nil
    /// Mean and maximum global gradient norm (before clipping) over the epoch's steps.
    public var gradNormMean: Double? = nil
    public var gradNormMax: Double? = nil
    /// Every rank's mean step time (ms, allreduce wait excluded), for the straggler summary.
    public var rankStepMs: [Double] = []
    /// Adam state held by each rank (MB), and whether it is sharded (ZeRO-1).
    public var optimizerStateMB: Double? = nil
    public var shardedOptimizer = false

    /// The slowest rank and how far its mean step lags the fastest rank's (ms).
    public var straggler: (rank: Int, lagMs: Double)? {
        guard let slow = rankStepMs.indices.max(by: { rankStepMs[$0] < rankStepMs[$1] }), let fast = rankStepMs.min() else { return nil }
        return (slow, rankStepMs[slow] - fast)
    }
}

/// Something written at the end of every epoch by the rank that writes (rank 0): the metrics
/// file, the console line, TensorBoard scalars, pictures. The trainer calls each output in
/// turn, so adding one means writing a type and appending it to `Trainer.outputs`; the loop
/// does not change.
protocol EpochOutput: AnyObject {
    func write(_ epoch: FinishedEpoch) throws
}
