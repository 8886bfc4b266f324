import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// A checkpoint that cannot be used.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missing(path: String)
    case notDisttrain(path: String)
    case architectureMismatch(path: String, detail: String)
    case badState(path: String, reason: String)
    /// A file of the checkpoint does not match the checksum trainer.json records (or is missing).
    case damaged(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missing(path): return "checkpoint \(path): not found"
        case let .notDisttrain(path): return "checkpoint \(path): no disttrain model config in its metadata"
        case let .architectureMismatch(path, detail): return "checkpoint \(path): different architecture: \(detail)"
        case let .badState(path, reason): return "checkpoint \(path): \(reason)"
        case let .damaged(path, reason): return "checkpoint \(path) is damaged: \(reason)"
        }
    }
}
