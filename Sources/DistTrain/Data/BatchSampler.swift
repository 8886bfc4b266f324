/// What the trainer asks of a sampler: how many steps an epoch has, and the epoch's batches.
///
/// `StratifiedSampler` (normal mode: one stratified batch per rank) and `PieceSampler`
/// (deterministic mode: one stratified share per virtual shard) both answer it, so the step
/// loop fills its batch the same way in both modes.
public protocol BatchSampler: Sendable {
    /// Steps per epoch (the same on every rank).
    var steps: Int { get }
    /// The epoch's batches for this rank, flattened: `steps * localBatch` shard-local indices;
    /// batch s is elements s*localBatch ..< (s+1)*localBatch.
    func order(epoch: Int) -> [Int32]
}

extension StratifiedSampler: BatchSampler {}
