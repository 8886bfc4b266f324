import Models

/// Cross-rank BatchNorm (SyncBN): BatchNorm's per-channel sums go through one allreduce per
/// layer in forward and one in backward, so N ranks of B/N rows normalize with the statistics
/// of the whole global batch, exactly as one rank of B rows would.
///
/// Given the gradient reducer, the allocations MPI makes inside these calls are counted with
/// the reducer's (reported as mpi_allocations_per_step), apart from disttrain's own.
final class SyncBatchStatistics: BatchStatisticsReducer {
    let comm: Communicator
    let counter: GradientReducer?
    init(comm: Communicator, countingWith counter: GradientReducer? = nil) {
        self.comm = comm
        self.counter = counter
    }
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        if let counter {
            counter.inCommunicator { comm.allreduceSum(values, count: count) }
        } else {
            comm.allreduceSum(values, count: count)
        }
    }
}
