import DistTrainIO
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One job per run directory: rank 0 holds `RUN/.lock` for as long as the job runs.
///
/// The lock is `flock(2)` on that file, so it dies with the process that holds it: a job killed
/// by SIGKILL, OOM or a lost node leaves no lock behind, and the next job takes the directory
/// over (saying whose lock it found). The file's contents name the holder (host, pid, start
/// time) for the refusal message only; they never decide anything, so there is no stale-pid
/// guessing across hosts. On NFS, Linux implements flock with the server's byte-range locks,
/// which hold across clients. A second job on a directory in use refuses with
/// `ExitStatus.runLocked`.
public final class RunLock {
    public let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock of `directory` (which must exist), or throws `RunLockError.held`.
    public static func acquire(directory: String, log: Logger) throws -> RunLock {
        let path = directory + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunDirectoryError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        let previous = holder(fd)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EWOULDBLOCK {
                close(fd)
                throw RunLockError.held(directory: directory, holder: previous ?? "a job that has not written its name yet")
            }
            // A file system without locks: say so and go on unprotected.
            log.warning("cannot lock \(path) (\(String(cString: strerror(e)))): nothing stops a second job from writing this run directory")
        } else if let previous {
            log.notice("took over \(path) from a job that is gone (\(previous))")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let line = "host \(String(cString: host)), pid \(getpid()), started \(Int(Clock.wall())) (Unix time)\n"
        ftruncate(fd, 0)
        _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
        return RunLock(path: path, fd: fd)
    }

    deinit { release() }

    /// Removes the file and drops the lock (at the end of a run, or when setup fails, so a
    /// refused run leaves nothing behind; process exit drops the lock but leaves the file).
    public func release() {
        guard fd >= 0 else { return }
        ftruncate(fd, 0)
        unlink(path)
        close(fd)
        fd = -1
    }

    private static func holder(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: " \n\t")
        return text.isEmpty ? nil : text
    }
}

/// The run directory is in use.
public enum RunLockError: Error, CustomStringConvertible, StatusCarrying {
    case held(directory: String, holder: String)

    public var exitStatus: ExitStatus { .runLocked }

    public var description: String {
        switch self {
        case let .held(directory, holder):
            return "output directory \(directory) is in use by another job (\(holder)); wait for it to end, stop it, or choose another --out"
        }
    }
}
