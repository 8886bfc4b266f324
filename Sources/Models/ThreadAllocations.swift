import CAllocCount

/// Heap allocations made by the calling thread only.
///
/// The process-wide counter (DistTrain's AllocationCounter) also sees every other thread, such
/// as test suites running in parallel; this one lets a test assert that one training step on
/// this thread allocates nothing.
public enum ThreadAllocations {
    @inline(__always)
    public static var count: UInt64 { UInt64(dt_thread_allocation_count()) }
}
