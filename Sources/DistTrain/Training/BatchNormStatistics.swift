/// Where BatchNorm's batch statistics come from in data-parallel training.
public enum BatchNormStatistics: String, CaseIterable, Sendable {
    /// Summed over every rank (SyncBN): N ranks x B/N rows compute what 1 rank x B rows does.
    case sync
    /// Each rank's own rows (what plain PyTorch DDP does): statistics of B/N samples, so the
    /// model depends on the rank count, and the running statistics differ between ranks
    /// (rank 0's are saved).
    case local
}
