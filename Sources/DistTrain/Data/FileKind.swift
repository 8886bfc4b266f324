import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// What kind of file a path names, for refusing devices, FIFOs and the like where a regular
/// file is required (they may never end, like /dev/zero, or be readable only once).
enum FileKind {
    /// "a character device", "a FIFO (named pipe)", ... when `path` exists (after following
    /// links) and is not a regular file; nil for a regular file or a missing path.
    static func special(_ path: String) -> String? {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        let mode = s.st_mode & S_IFMT
        return mode == S_IFREG ? nil : AtomicFile.kindName(mode)
    }
}
