/// Sums per-channel batch statistics across data-parallel ranks, for cross-rank BatchNorm
/// (SyncBN), without Models knowing about MPI.
///
/// BatchNorm's training-mode forward calls `sum` once per layer with [count, sum_c, sum_c x^2]
/// and its backward once with [sum_c dy, sum_c dy * xhat], all in float64. An implementation
/// must replace `values` in place by their elementwise sums over every rank (an allreduce),
/// and every rank must make the same calls in the same order (BN layers in forward order, then
/// in backward order). With it, N ranks of B/N rows compute what one rank of B rows computes;
/// passing no reducer gives per-rank statistics (plain data-parallel BatchNorm).
public protocol BatchStatisticsReducer: AnyObject {
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Deterministic mode (true): BatchNorm normalizes with its own rows' statistics, sums
    /// nothing across ranks, leaves the running statistics alone and hands its forward sums
    /// [sum_c x, sum_c x^2, count] to `record` instead; the reducer updates the running
    /// statistics later (`BatchNorm.updateRunningStatistics`), in an order of its choosing.
    var recordsPieceStatistics: Bool { get }
    func record(_ values: UnsafePointer<Double>, count: Int)
}

extension BatchStatisticsReducer {
    public var recordsPieceStatistics: Bool { false }
    public func record(_ values: UnsafePointer<Double>, count: Int) {}
}
