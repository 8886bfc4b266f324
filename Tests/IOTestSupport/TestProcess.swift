import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The one runner of every test that starts a program (disttrain, mpirun, python3, file): output
// captured in files, an environment free of the test process's own MPI settings, a time limit
// (TERM, then KILL 5 s later) whose expiry is recorded as a test issue.


/// The outcome of one child process (`disttrain`, mpirun, python3, ...).
public struct ProcessResult: Sendable {
    /// The executable's name and the arguments, for messages.
    public var command: [String]
    public var status: Int32
    /// False when the process died of a signal (a crash, or the timeout's kill).
    public var exitedNormally: Bool
    public var timedOut: Bool
    public var seconds: Double
    public var stdout: String
    public var stderr: String

    public var commandLine: String { command.joined(separator: " ") }
    /// stdout then stderr.
    public var output: String { stdout + stderr }

    /// Everything needed to diagnose a failed expectation.
    public var summary: Comment {
        Comment(rawValue: """
        command: \(commandLine)
        exit: \(exitedNormally ? "status \(status)" : "signal \(status)")\(timedOut ? " (timed out, killed)" : ""), \(String(format: "%.2f", seconds)) s
        stderr: \(stderr.isEmpty ? "(empty)" : "\n" + stderr)
        stdout: \(stdout.isEmpty ? "(empty)" : "\n" + String(stdout.prefix(4000)))
        """)
    }
}

public enum TestProcess {
    /// The package root, from this file's location (Tests/IOTestSupport/TestProcess.swift).
    public static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The `disttrain` executable: $DISTTRAIN_BIN, else next to the test bundle (built by
    /// `swift build --build-tests`), else in the package's .build directories.
    public static func disttrain() throws -> String {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["DISTTRAIN_BIN"], !explicit.isEmpty { candidates.append(explicit) }
        if let exe = Bundle.main.executablePath {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("disttrain").path)
        }
        if let first = CommandLine.arguments.first, first.contains("/") {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent("disttrain").path)
        }
        for c in ["release", "debug"] { candidates.append(packageRoot + "/.build/\(c)/disttrain") }
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(found, "disttrain executable not found (looked at \(candidates)); build with `swift build --build-tests`")
    }

    /// mpirun; its absence is a failure, not a silent pass (scripts/tools/install-deps.sh installs it).
    public static func mpirun() throws -> String {
        let candidates = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(found, "mpirun not found at \(candidates): install OpenMPI (bash scripts/tools/install-deps.sh)")
    }

    /// Our environment minus anything that would make disttrain (or mpirun) think it runs inside
    /// an MPI job: this test process is an MPI singleton, and Open MPI put its settings
    /// (OMPI_MCA_ess=singleton, ...) into our environment. Plus Open MPI's permission to run as root.
    public static var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || key.hasPrefix("PRTE_")
            || ["PMI_RANK", "PMI_SIZE", "SLURM_PROCID", "SLURM_NTASKS"].contains(key) {
            env.removeValue(forKey: key)
        }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        return env
    }

    /// A started process whose stdout and stderr go to files in a private scratch directory.
    private struct Running {
        let process = Process()
        let scratch: String
        let out: FileHandle, err: FileHandle
        let started = Date()

        init(_ executable: String, _ arguments: [String], directory: String) throws {
            scratch = NSTemporaryDirectory() + "disttrain-proc-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: scratch + "/stdout", contents: nil)
            _ = FileManager.default.createFile(atPath: scratch + "/stderr", contents: nil)
            out = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/stdout"))
            err = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch + "/stderr"))
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.environment = TestProcess.environment
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }

        /// Collects the outcome; a timed-out run is recorded as a test issue.
        func finish(_ command: [String], timedOut: Bool, timeout: Double, sourceLocation: SourceLocation) -> ProcessResult {
            process.waitUntilExit()
            try? out.close(); try? err.close()
            let result = ProcessResult(
                command: command, status: process.terminationStatus,
                exitedNormally: process.terminationReason == .exit, timedOut: timedOut,
                seconds: Date().timeIntervalSince(started),
                stdout: (try? String(contentsOfFile: scratch + "/stdout", encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOfFile: scratch + "/stderr", encoding: .utf8)) ?? "")
            try? FileManager.default.removeItem(atPath: scratch)
            if timedOut {
                Issue.record("did not finish within \(Int(timeout)) s and was killed\n\(result.summary.rawValue)",
                             sourceLocation: sourceLocation)
            }
            return result
        }

        /// SIGTERM, then SIGKILL after a 5 s grace period.
        func stop(wait: () -> Void) {
            process.terminate()
            let grace = Date().addingTimeInterval(5)
            while process.isRunning && Date() < grace { wait() }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// Runs `executable arguments` in `directory` (default: the package root), blocking; killed
    /// (and recorded as an issue) after `timeout` seconds. `name` replaces the executable's path
    /// in messages.
    public static func run(_ executable: String, _ arguments: [String], timeout: Double = 180, directory: String = packageRoot,
                    name: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        let running = try Running(executable, arguments, directory: directory)
        let deadline = running.started.addingTimeInterval(timeout)
        while running.process.isRunning && Date() < deadline { usleep(10_000) }
        let timedOut = running.process.isRunning
        if timedOut { running.stop { usleep(10_000) } }
        return running.finish([name ?? executable] + arguments, timedOut: timedOut, timeout: timeout, sourceLocation: sourceLocation)
    }

    /// The same, waiting without blocking a thread of the test pool.
    public static func run(_ executable: String, _ arguments: [String], timeout: Double = 180, directory: String = packageRoot,
                    name: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> ProcessResult {
        let running = try Running(executable, arguments, directory: directory)
        let deadline = running.started.addingTimeInterval(timeout)
        while running.process.isRunning && Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
        let timedOut = running.process.isRunning
        if timedOut { running.stop { usleep(20_000) } }
        return running.finish([name ?? executable] + arguments, timedOut: timedOut, timeout: timeout, sourceLocation: sourceLocation)
    }
}
