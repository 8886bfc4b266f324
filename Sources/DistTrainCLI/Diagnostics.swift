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

