import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// The output directory cannot be used.
public enum RunDirectoryError: Error, CustomStringConvertible {
    case cannotCreate(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case holdsAnotherRun(path: String)

    public var description: String {
        switch self {
        case let .cannotCreate(path, reason): return "output directory \(path): cannot create: \(reason)"
        case let .cannotWrite(path, reason): return "output directory \(path): cannot write: \(reason)"
        case let .holdsAnotherRun(path):
            return "output directory \(path) already holds a run: pass --resume to continue it, or choose another --out"
        }
    }
}
