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

    /// Names of the entries of a directory (without "." and ".."), unsorted; empty when it
    /// cannot be read.
    public static func list(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if n != "." && n != ".." { names.append(n) }
        }
        return names
    }
}
