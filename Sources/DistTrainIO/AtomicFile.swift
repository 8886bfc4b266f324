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
    /// `path` (or what its symbolic link points to) exists but is not a regular file: a device,
    /// FIFO, socket or directory is never replaced by a rename.
    case notRegularFile(path: String, kind: String)
    /// The file is larger than the reader accepts (or never ends, like /dev/zero).
    case tooLarge(path: String, limit: Int)

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
        case let .notRegularFile(path, kind): return "\(path): is \(kind), not a regular file; refusing to replace it (give a file path)"
        case let .tooLarge(path, limit): return "\(path): larger than \(limit) bytes, the most accepted here"
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
        /// CRC32C of the bytes written so far: a file's checksum comes with writing it, with no
        /// second pass over the file.
        public private(set) var crc32c: UInt32 = 0

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
            crc32c = CRC32C.checksum(bytes, continuing: crc32c)
        }

        /// Appends `bytes`.
        public mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try self.write($0) }
        }
    }

    /// Atomically replaces `path` with `bytes`.
    @discardableResult
    public static func write(_ bytes: [UInt8], to path: String) throws -> WrittenFile {
        try write(to: path) { sink in try sink.write(bytes) }
    }

    /// Atomically replaces `path` with whatever `body` writes to the sink.
    ///
    /// If anything fails, including `body` throwing, the temporary file is removed, `path`
    /// is left as it was, and the error is rethrown. I/O failures throw `FileError`.
    ///
    /// Only a regular file is ever replaced. A symbolic link is followed deliberately: the file
    /// it points to is replaced (next to that file) and the link stays; a link to anything but
    /// a regular file, or to nothing, is refused, as is a device, FIFO, socket or directory
    /// (`FileError.notRegularFile`), so `/dev/null` or `/proc/self/fd/1` never becomes a file.
    /// Returns the size and CRC32C of what was written.
    @discardableResult
    public static func write(to requested: String, _ body: (inout Sink) throws -> Void) throws -> WrittenFile {
        let path = try replaceableTarget(requested)
        let temp = path + ".tmp-\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError.cannotCreate(path: path, reason: FileError.reason()) }
        var isOpen = true
        let written: WrittenFile
        do {
            var sink = Sink(fd: fd, path: path)
            try body(&sink)
            written = WrittenFile(bytes: sink.bytesWritten, crc32c: sink.crc32c)
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
        return written
    }

    /// The path a rename may replace for `path`: `path` itself when it is absent or a regular
    /// file, the real path of a symbolic link's regular-file target; anything else throws.
    public static func replaceableTarget(_ path: String) throws -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return path }  // absent: created (errors come from open)
        var mode = info.st_mode & S_IFMT
        if mode == S_IFREG { return path }
        guard mode == S_IFLNK else { throw FileError.notRegularFile(path: path, kind: kindName(mode)) }
        guard stat(path, &info) == 0 else {
            throw FileError.notRegularFile(path: path, kind: "a symbolic link to a missing file")
        }
        mode = info.st_mode & S_IFMT
        guard mode == S_IFREG else {
            throw FileError.notRegularFile(path: path, kind: "a symbolic link to " + kindName(mode))
        }
        // /proc/self/fd/1 and /dev/stdout are links to whatever a process has open (often the
        // file its output is redirected to): never replaced, even when that is a regular file.
        if path.hasPrefix("/proc/") || path.hasPrefix("/dev/") {
            throw FileError.notRegularFile(path: path, kind: "a symbolic link to a process's open file or a device")
        }
        var hop = path
        for _ in 0..<40 {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(hop, &buffer, buffer.count - 1)
            guard n > 0 else { break }
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            hop = target.hasPrefix("/") ? target : directory(of: hop) + "/" + target
            if hop.hasPrefix("/proc/") || hop.hasPrefix("/dev/") {
                throw FileError.notRegularFile(path: path, kind: "a symbolic link to \(target) (a process's open file or a device)")
            }
        }
        guard let real = realpath(path, nil) else {
            throw FileError.notRegularFile(path: path, kind: "a symbolic link that cannot be resolved")
        }
        defer { free(real) }
        return String(cString: real)
    }

    /// "a character device", "a directory", ... for a file type from `st_mode`.
    public static func kindName(_ mode: mode_t) -> String {
        switch mode {
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        default: return "a special file"
        }
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

    /// Reads a whole file of at most `limit` bytes. Throws `FileError.notFound`, `.cannotOpen`,
    /// `.readFailed`, or `.tooLarge` when the file holds more than `limit` bytes (checked
    /// against its size first, then while reading, so /dev/zero or a file that grows stops at
    /// the limit instead of filling memory).
    public static func readAll(path: String, limit: Int = Int.max) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw FileError.notFound(path: path) }
            throw FileError.cannotOpen(path: path, reason: FileError.reason(code))
        }
        defer { close(fd) }
        var info = stat()
        let sizeHint = fstat(fd, &info) == 0 ? max(Int(info.st_size), 0) : 0
        if sizeHint > limit { throw FileError.tooLarge(path: path, limit: limit) }
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
            if filled > limit { throw FileError.tooLarge(path: path, limit: limit) }
        }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }
}

/// What `AtomicFile.write` put in place: the file's size and the CRC32C of its bytes.
public struct WrittenFile: Equatable, Sendable {
    public let bytes: Int
    public let crc32c: UInt32

    public init(bytes: Int, crc32c: UInt32) {
        self.bytes = bytes
        self.crc32c = crc32c
    }
}
