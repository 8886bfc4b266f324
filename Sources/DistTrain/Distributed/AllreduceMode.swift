import Models

/// How gradients are summed across ranks.
public enum AllreduceMode: String, CaseIterable, Sendable {
    /// One blocking MPI_Allreduce of the whole buffer after backward.
    case single
    /// Buckets of a few layers each, started with MPI_Iallreduce as soon as backward has
    /// produced them and waited for before the optimizer step (PyTorch DDP / Horovod style).
    case overlap
}
