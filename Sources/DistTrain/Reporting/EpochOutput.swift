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
}

/// Something written at the end of every epoch by the rank that writes (rank 0): the metrics
/// file, the console line, TensorBoard scalars, pictures. The trainer calls each output in
/// turn, so adding one means writing a type and appending it to `Trainer.outputs`; the loop
/// does not change.
protocol EpochOutput: AnyObject {
    func write(_ epoch: FinishedEpoch) throws
}
