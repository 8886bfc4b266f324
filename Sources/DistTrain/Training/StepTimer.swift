import Models
import Synchronization

/// The phases of a training step, in the order they run.
public enum StepPhase {
    case data, forward, backward, allreduce, optimizer
    /// ZeRO-1: gathering the updated parameter slices.
    case allgather

    /// The trace event of this phase.
    var trace: TracePhase {
        switch self {
        case .data: return .data
        case .forward: return .forward
        case .backward: return .backward
        case .allreduce: return .allreduceWait
        case .optimizer: return .optimizer
        case .allgather: return .allgather
        }
    }
}

/// Times the phases of training steps and counts the heap allocations they make, so the
/// step itself stays a short list of plain calls.
///
///     timer.beginStep()
///     fill(); timer.lap(.data)
///     forward(); timer.lap(.forward)
///     ...
///     timer.endStep()
///
/// Allocations are counted for the whole process (`AllocationCounter`) and split into those
/// made inside the communicator's calls (MPI), inside cblas_sgemm (OpenBLAS), and the rest,
/// which is disttrain's own code and should be zero.
struct StepTimer {
    /// Sums over the steps since the last `reset()`.
    private(set) var times = PhaseTimes()
    private var last = 0.0
    private var allocationsBefore: UInt64 = 0
    private var communicatorBefore: UInt64 = 0
    private var blasBefore: UInt64 = 0
    private let reducer: GradientReducer
    /// Step trace (`--trace`): every lap becomes an event; nil costs one branch per lap.
    private let trace: TraceRecorder?

    init(reducer: GradientReducer, trace: TraceRecorder? = nil) {
        self.reducer = reducer
        self.trace = trace
    }

    /// Starts a new epoch's sums.
    mutating func reset() { times = PhaseTimes() }

    @inline(__always)
    mutating func beginStep() {
        allocationsBefore = AllocationCounter.count
        communicatorBefore = reducer.communicatorAllocations &+ StallWatchdog.allocations.load(ordering: .relaxed)
        blasBefore = BLASAllocations.count
        last = Clock.now()
    }

    /// Adds the time since the previous lap (or `beginStep`) to `phase`.
    @inline(__always)
    mutating func lap(_ phase: StepPhase) {
        let start = last
        let seconds = Clock.lap(&last)
        if let trace { trace.record(phase.trace, start: start, end: last) }
        switch phase {
        case .data: times.data += seconds
        case .forward: times.forward += seconds
        case .backward: times.backward += seconds
        case .allreduce: times.allreduce += seconds
        case .optimizer: times.optimizer += seconds
        case .allgather: times.allgather += seconds
        }
    }

    /// Moves `seconds` already counted in `phase` to the allgather phase: ZeRO-1's waits for
    /// parameter ranges inside forward (the phases still add up to the step).
    @inline(__always)
    mutating func moveToAllgather(_ seconds: Double, from phase: StepPhase) {
        guard seconds > 0 else { return }
        switch phase {
        case .data: times.data -= seconds
        case .forward: times.forward -= seconds
        case .backward: times.backward -= seconds
        case .allreduce: times.allreduce -= seconds
        case .optimizer: times.optimizer -= seconds
        case .allgather: return
        }
        times.allgather += seconds
    }

    @inline(__always)
    mutating func endStep() {
        times.steps += 1
        times.allocations &+= AllocationCounter.count &- allocationsBefore
        times.communicatorAllocations &+= reducer.communicatorAllocations &+ StallWatchdog.allocations.load(ordering: .relaxed) &- communicatorBefore
        times.blasAllocations &+= BLASAllocations.count &- blasBefore
    }

    /// Adds the epoch-end evaluation's time.
    mutating func addEvaluation(_ seconds: Double) { times.eval += seconds }
}
