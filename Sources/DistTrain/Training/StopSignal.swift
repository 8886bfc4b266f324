import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Graceful stop on SIGTERM, SIGINT and SIGUSR1 (what mpirun forwards, what schedulers send
/// before killing a job, what Slurm's `--signal` sends).
///
/// The handler only records the signal in an atomic (async-signal-safe). The trainer reads it
/// once per step and puts it into a spare slot of the gradient allreduce, so every rank learns
/// that some rank was signalled (a signal may reach only some ranks) at the same step, at no
/// extra collective; they then write a checkpoint at that step and exit with
/// `ExitStatus.stopped`. A second signal while that is under way exits at once
/// (`ExitStatus.interrupted`): nothing is saved beyond the last complete checkpoint.
public enum StopSignal {
    /// The first stop signal received (its number), 0 while none.
    static let received = Atomic<Int32>(0)
    /// Whether this process prints the line of a second signal (rank 0 only, so one line per job;
    /// set once the rank is known).
    static let speaks = Atomic<Bool>(false)
    public static let signals: [Int32] = [SIGTERM, SIGINT, SIGUSR1]

    /// Installs the handlers; `speaks`: this process prints the line of an immediate exit.
    public static func install(speaks: Bool) {
        _ = received.load(ordering: .relaxed)  // initialize before a handler can touch it
        StopSignal.speaks.store(speaks, ordering: .relaxed)
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                let (first, _) = StopSignal.received.compareExchange(expected: 0, desired: signal, ordering: .relaxed)
                if first { return }
                if StopSignal.speaks.load(ordering: .relaxed) {
                    let line: StaticString = "disttrain: error: second stop signal: exiting at once, without a checkpoint (the last complete checkpoint is kept)\n"
                    _ = write(2, line.utf8Start, line.utf8CodeUnitCount)
                }
                _exit(ExitStatus.interrupted.rawValue)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(s, &action, nil)
        }
    }

    /// Once the rank is known (the handlers go in before MPI starts): whether this process
    /// prints the line of a second signal.
    public static func setSpeaks(_ speaks: Bool) { StopSignal.speaks.store(speaks, ordering: .relaxed) }

    /// The number of the stop signal this process received, or 0.
    @inline(__always)
    public static var pending: Int32 { received.load(ordering: .relaxed) }

    /// "SIGTERM", "SIGINT", "SIGUSR1" or "signal N".
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(signal)"
        }
    }

    /// Test support: forget a received signal.
    static func reset() { received.store(0, ordering: .relaxed) }
}

/// Every rank agreed to stop at `step` after a stop signal and the checkpoint there is written.
public struct StopRequested: Error, CustomStringConvertible, StatusCarrying {
    public let step: Int
    public let epoch: Int
    public let checkpoint: String
    /// The signal this rank received, or 0 when it was another rank's.
    public let signal: Int32
    public var exitStatus: ExitStatus { .stopped }

    public var description: String {
        let what = signal != 0 ? StopSignal.name(signal) : "a stop signal (received by another rank)"
        return "stopped by \(what) at step \(step) (epoch \(epoch)): checkpoint \(checkpoint) written; continue with --resume (exit status \(ExitStatus.stopped.rawValue))"
    }
}
