import CAllocCount

/// Heap allocations made inside cblas_sgemm calls.
///
/// OpenBLAS's multithreaded level-3 path allocates a job table on every call (one per product
/// with more than one BLAS thread; none single-threaded). The trainer reports these apart from
/// its own allocations, which are none, so the figure in metrics.jsonl says whose they are.
public enum BLASAllocations {
    /// Allocations counted inside sgemm calls so far in this process.
    public static var count: UInt64 = 0

    /// Runs one BLAS call, adding the allocations it makes to `count`.
    @inline(__always)
    static func counting(_ call: () -> Void) {
        let before = dt_allocation_count()
        call()
        count &+= UInt64(dt_allocation_count() &- before)
    }
}
