#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads with errno-based messages (small files: configs, pointers, JSON state).
public enum FileBytes {
    public struct ReadError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The whole file; more than `limit` bytes (e.g. /dev/zero given as a config) throws.
    public static func read(_ path: String, limit: Int = Int.max) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else { throw ReadError(path: path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if out.count > limit { throw ReadError(path: path, reason: "larger than \(limit) bytes, the most accepted here") }
            if n < chunk.count {
                if ferror(f) != 0 { throw ReadError(path: path, reason: "read error") }
                break
            }
        }
        return out
    }

    public static func readString(_ path: String, limit: Int = Int.max) throws -> String {
        String(decoding: try read(path, limit: limit), as: UTF8.self)
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var s = stat()
        return stat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFDIR
    }
}
