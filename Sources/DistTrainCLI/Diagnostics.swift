import DistTrain
import Logging
import Models
#if canImport(Glibc)
import Glibc
#endif

/// stderr diagnostics as "disttrain[rank 0] info: message".
struct RankLogHandler: LogHandler {
    let rank: Int
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        fputs("disttrain[rank \(rank)] \(level): \(message)\n", stderr)
    }
}

enum Diagnostics {
    /// Rank 0 logs at the requested level; other ranks only warnings and worse unless asked for debug.
    static func logger(rank: Int, level: Logger.Level) -> Logger {
        let effective = rank == 0 || level <= .debug ? level : max(level, .warning)
        return Logger(label: "disttrain") { _ in RankLogHandler(rank: rank, logLevel: effective) }
    }
}

/// How many OpenBLAS threads a rank should run.
enum ThreadPlan {
    /// `requested` if positive; otherwise the CPUs this process may run on divided by the ranks
    /// on this host. A rank pinned to one core by mpirun gets one thread, so ranks never fight.
    static func threads(requested: Int, ranksOnHost: Int) -> Int {
        if requested > 0 { return requested }
        let allowed = allowedCPUs()
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // A rank bound to a subset of cores uses those; an unbound rank shares the host.
        if allowed < online { return max(1, allowed) }
        return max(1, online / max(ranksOnHost, 1))
    }

    /// CPUs in this process's affinity mask, from the "Cpus_allowed" hex mask in /proc/self/status.
    static func allowedCPUs() -> Int {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard let status = try? FileBytes.readString("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return online }
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
        return count > 0 ? count : online
    }
}
