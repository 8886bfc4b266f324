import CAllocCount

/// Counts heap allocations made by the whole process (every thread, every library).
///
/// Backed by an interposed malloc family (Sources/CAllocCount); the trainer reads it around
/// each step and reports `allocations_per_step` in metrics.jsonl, so "the step loop allocates
/// nothing" is a measured figure, not a claim.
public enum AllocationCounter {
    /// False where the malloc family cannot be interposed (non-glibc systems).
    public static var isAvailable: Bool { dt_allocation_counting_available() != 0 }

    /// Allocations so far; compare two readings to count the calls in between.
    @inline(__always)
    public static var count: UInt64 { UInt64(dt_allocation_count()) }
}
