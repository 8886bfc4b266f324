#if canImport(Glibc)
import Glibc
#endif

/// A directory could not be created; callers wrap it in their own error naming what the
/// directory was for.
public struct DirectoryCreationError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): cannot create: \(reason)" }
}

/// Directory helpers shared by every writer of files.
public enum Directories {
    /// `mkdir -p`: creates `path` and its missing parents; an existing directory is fine, an
    /// existing non-directory on the way is an error.
    public static func make(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw DirectoryCreationError(path: path, reason: String(cString: strerror(errno)))
            }
            if !FileBytes.isDirectory(current) {
                throw DirectoryCreationError(path: path, reason: "\(current) is not a directory")
            }
        }
    }
}
