import DistTrainIO
import Logging
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Seconds spent in each phase of training steps, summed over `steps` steps.
public struct PhaseTimes: Sendable {
    public var data = 0.0
    public var forward = 0.0
    public var backward = 0.0
    /// Waiting for the gradient sum after backward (the part communication did not overlap).
    public var allreduce = 0.0
    public var optimizer = 0.0
    /// ZeRO-1's parameter allgather after the sliced update (0 unsharded); with
    /// `overlap_allgather`, the part not hidden: starting the ranges' gathers after Adam and
    /// forward's waits for them (taken out of `forward`).
    public var allgather = 0.0
    /// Test-set evaluation at the epoch end.
    public var eval = 0.0
    public var steps = 0
    /// Heap allocations during the steps (whole process, measured by AllocationCounter), and
    /// the part of them made inside MPI calls (the communicator's, and the stall watchdog's heartbeats).
    public var allocations: UInt64 = 0
    public var communicatorAllocations: UInt64 = 0
    /// The part made inside cblas_sgemm (OpenBLAS's threaded path allocates per call).
    public var blasAllocations: UInt64 = 0

    public init() {}

    /// Milliseconds per step of each step phase, for metrics.jsonl.
    public var json: JSON {
        let n = Double(max(steps, 1)) / 1000
        func ms(_ x: Double) -> JSON { .number((x / n * 1000).rounded() / 1000) }
        return .object([("data", ms(data)), ("forward", ms(forward)), ("backward", ms(backward)),
                        ("allreduce_wait", ms(allreduce)), ("optimizer", ms(optimizer))]
                       + (allgather > 0 ? [("allgather", ms(allgather))] : [])
                       + [("eval_seconds", .number((eval * 1000).rounded() / 1000))])
    }

    /// Allocations per step made by disttrain's own code (everything but MPI's and OpenBLAS's
    /// calls), by MPI and by OpenBLAS, for metrics.jsonl; null where they cannot be counted.
    public var allocationsJSON: [(String, JSON)] {
        guard AllocationCounter.isAvailable else { return [("allocations_per_step", .null)] }
        let n = Double(max(steps, 1))
        let own = allocations &- min(communicatorAllocations &+ blasAllocations, allocations)
        return [("allocations_per_step", .number(Double(own) / n)),
                ("mpi_allocations_per_step", .number(Double(communicatorAllocations) / n)),
                ("blas_allocations_per_step", .number(Double(blasAllocations) / n))]
    }
}
