import Models

/// Cross-rank BatchNorm (SyncBN): BatchNorm's per-channel sums go through one allreduce per
/// layer in forward and one in backward, so N ranks of B/N rows normalize with the statistics
/// of the whole global batch, exactly as one rank of B rows would.
final class SyncBatchStatistics: BatchStatisticsReducer {
    let comm: Communicator
    init(comm: Communicator) { self.comm = comm }
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { comm.allreduceSum(values, count: count) }
}
