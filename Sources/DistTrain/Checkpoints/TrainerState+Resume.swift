extension TrainerState {
    /// How a checkpoint taken mid-epoch (`self`) differs from the run resuming it (`fresh`) in
    /// a way that changes the interrupted epoch's batches, as words for a notice ("by 2 ranks
    /// with global batch 256; this run has 1 rank with 128"), or nil when it may continue the
    /// epoch. The sampling order depends on the world size and the local batch, so a changed
    /// world size or global batch restarts at the next epoch boundary (a continued epoch
    /// would cover the wrong number of samples).
    /// In deterministic mode (`batchesDependOnWorld` false) batches do not depend on the
    /// world size, so only a changed global batch restarts.
    public func midEpochChange(to fresh: TrainerState, batchesDependOnWorld: Bool = true) -> String? {
        guard stepInEpoch > 0 else { return nil }
        let worldChanged = batchesDependOnWorld && worldSize != fresh.worldSize
        let batchChanged = globalBatch != 0 && globalBatch != fresh.globalBatch
        guard worldChanged || batchChanged else { return nil }
        func ranks(_ n: Int) -> String { n == 1 ? "1 rank" : "\(n) ranks" }
        let then = "by \(ranks(worldSize))" + (globalBatch != 0 ? " with global batch \(globalBatch)" : "")
        return then + "; this run has \(ranks(fresh.worldSize)) with global batch \(fresh.globalBatch)"
    }
}
