import DistTrainIO

/// The exit statuses of `disttrain`, in one place (README "Checkpoints, resume and failures",
/// `disttrain --help`). `launch/mpirun-disttrain --max-restarts` restarts after `failure` and
/// `stalled` (and after a rank killed by a signal), never after the others.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// Finished.
    case success = 0
    /// Any other failure (a NaN, a write error mid-run, a rank that died, MPI trouble).
    case failure = 1
    /// Bad command line (ArgumentParser's usage status).
    case usage = 64
    /// Bad input: config, data files, checkpoint to start from, output directory. Rerunning
    /// the same command cannot help.
    case badInput = 65
    /// The run directory is in use by another live job (RUN/.lock).
    case runLocked = 73
    /// Stopped by SIGTERM, SIGINT or SIGUSR1 after writing a checkpoint: `--resume` continues.
    case stopped = 75
    /// A rank did not reach a collective within `runtime.stall_timeout_s`; the job was aborted.
    case stalled = 76
    /// A second stop signal arrived before the checkpoint was written: exited at once, nothing saved.
    case interrupted = 77

    /// One line per status, for `--help` and the README.
    public static let summary = """
        0 done; 1 failure (restartable); 64 bad command line; 65 bad input (config, data, \
        checkpoint, output directory); 73 run directory in use by another job; 75 stopped by \
        SIGTERM/SIGINT/SIGUSR1 with a checkpoint written (--resume continues); 76 a rank stalled \
        past runtime.stall_timeout_s (job aborted); 77 a second stop signal, exited at once
        """

    /// The status an error stands for: bad input when rerunning cannot help, else failure.
    public static func of(_ error: Error) -> ExitStatus {
        switch error {
        case let e as PeerFailure: return e.status
        case let e as StatusCarrying: return e.exitStatus
        case is ConfigError, is DatasetError, is BatchingError, is CheckpointError, is AnalysisError,
             is SafeTensorsError, is IDXError, is JSONSyntaxError, is DirectoryCreationError,
             is RunDirectoryError:
            // An unwritable or full output directory included: a restart would fail the same way.
            return .badInput
        default: return .failure
        }
    }
}

/// An error that knows its own exit status.
public protocol StatusCarrying: Error {
    var exitStatus: ExitStatus { get }
}
