import Glibc

/// An I/O failure on a named file. Descriptions name the path and the system's reason.
public enum FileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file to read does not exist.
    case notFound(path: String)
    /// The file exists but could not be opened for reading.
    case cannotOpen(path: String, reason: String)
    /// Reading failed part way.
    case readFailed(path: String, reason: String)
    /// The temporary file next to `path` could not be created (missing or unwritable directory).
    case cannotCreate(path: String, reason: String)
    /// Writing the temporary file for `path` failed (disk full, I/O error).
    case writeFailed(path: String, reason: String)
    /// fsync of the file or its directory failed; the data may not be durable.
    case syncFailed(path: String, reason: String)
    /// close of the temporary file failed (on some file systems this reports delayed write errors).
    case closeFailed(path: String, reason: String)
    /// The finished temporary file could not be renamed over `path`.
    case renameFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such file"
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .readFailed(path, reason): return "\(path): read failed: \(reason)"
        case let .cannotCreate(path, reason): return "\(path): cannot create: \(reason)"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        case let .syncFailed(path, reason): return "\(path): fsync failed: \(reason)"
        case let .closeFailed(path, reason): return "\(path): close failed: \(reason)"
        case let .renameFailed(path, reason): return "\(path): cannot rename the temporary file into place: \(reason)"
        }
    }

    /// The text of the current `errno`.
    static func reason(_ code: Int32 = errno) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }
}

/// Crash-safe file replacement: readers see either the old file or the complete new one.
///
/// The data goes to `path.tmp-<pid>-<random>` in the same directory (so the final rename
/// stays on one file system and is atomic), is fsynced, then renamed over `path`, and the
/// directory is fsynced so the rename itself survives a power loss.
public enum AtomicFile {
    /// Where the body of `AtomicFile.write(to:_:)` sends its bytes.
    public struct Sink {
        fileprivate let fd: Int32
        /// The final path (errors name it, not the temporary file).
        public let path: String
        /// Bytes written so far.
        public private(set) var bytesWritten = 0

        fileprivate init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// Appends `bytes`, retrying short writes and interrupted calls.
        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard let base = bytes.baseAddress else { return }
            var done = 0
            while done < bytes.count {
                // Linux writes at most ~2 GiB per call; stay well below.
                let n = Glibc.write(fd, base + done, min(bytes.count - done, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError.writeFailed(path: path, reason: FileError.reason())
                }
                if n == 0 { throw FileError.writeFailed(path: path, reason: "write returned 0 bytes") }
                done += n
            }
            bytesWritten += done
        }

        /// Appends `bytes`.
        public mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try self.write($0) }
        }
    }

    /// Atomically replaces `path` with `bytes`.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { sink in try sink.write(bytes) }
    }

    /// Atomically replaces `path` with whatever `body` writes to the sink.
    ///
    /// If anything fails, including `body` throwing, the temporary file is removed, `path`
    /// is left as it was, and the error is rethrown. I/O failures throw `FileError`.
    public static func write(to path: String, _ body: (inout Sink) throws -> Void) throws {
        let temp = path + ".tmp-\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.cannotCreate(path: path, reason: FileError.reason()) }
        var isOpen = true
        do {
            var sink = Sink(fd: fd, path: path)
            try body(&sink)
            guard fsync(fd) == 0 else { throw FileError.syncFailed(path: path, reason: FileError.reason()) }
            isOpen = false
            // close can report delayed write errors (NFS); don't retry on EINTR, the fd is gone.
            guard close(fd) == 0 else { throw FileError.closeFailed(path: path, reason: FileError.reason()) }
            guard rename(temp, path) == 0 else { throw FileError.renameFailed(path: path, reason: FileError.reason()) }
        } catch {
            if isOpen { close(fd) }
            unlink(temp)
            throw error
        }
        try syncDirectory(of: path)
    }

    /// fsyncs the directory holding `path` so a rename into it is durable.
    static func syncDirectory(of path: String) throws {
        let dir = directory(of: path)
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw FileError.syncFailed(path: dir, reason: FileError.reason()) }
        defer { close(dfd) }
        if fsync(dfd) != 0 {
            // Some file systems cannot fsync directories at all; nothing more can be done there.
            let code = errno
            if code == EINVAL || code == ENOTSUP { return }
            throw FileError.syncFailed(path: dir, reason: FileError.reason(code))
        }
    }

    /// The directory part of `path` ("." for a bare name, "/" for a file in the root).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Reads a whole file. Throws `FileError.notFound`, `.cannotOpen` or `.readFailed`.
    public static func readAll(path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw FileError.notFound(path: path) }
            throw FileError.cannotOpen(path: path, reason: FileError.reason(code))
        }
        defer { close(fd) }
        var info = stat()
        let sizeHint = fstat(fd, &info) == 0 ? max(Int(info.st_size), 0) : 0
        var bytes = [UInt8](repeating: 0, count: sizeHint)
        var filled = 0
        while true {
            // Read into the array while stat's size lasts, then check for more (stat can be
            // stale or 0, e.g. for /proc files) through a small probe instead of growing first.
            let room = bytes.count - filled
            var probe = [UInt8](repeating: 0, count: room > 0 ? 0 : 1 << 16)
            let n = room > 0
                ? bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, room) }
                : probe.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.readFailed(path: path, reason: FileError.reason())
            }
            if n == 0 { break }
            if room == 0 { bytes += probe[0..<n] }
            filled += n
        }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }
}
