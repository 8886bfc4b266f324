#if canImport(Glibc)
import Glibc
#endif

/// Why a TensorBoard event file could not be written. Descriptions name the file and the problem.
public enum TensorBoardError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The log directory could not be created.
    case cannotCreateDirectory(path: String, reason: String)
    /// No new event file could be created in the directory.
    case cannotOpen(path: String, reason: String)
    /// Appending to (or flushing) the event file failed: disk full, I/O error.
    case writeFailed(path: String, reason: String)
    /// The writer was closed before this call.
    case closed(path: String)
    /// A summary tag that TensorBoard cannot show (empty, or not valid as a tag).
    case invalidTag(tag: String, reason: String)
    /// An image summary with impossible arguments.
    case invalidImage(tag: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreateDirectory(path, reason): return "TensorBoard log directory \(path): cannot create: \(reason)"
        case let .cannotOpen(path, reason): return "TensorBoard event file \(path): cannot create: \(reason)"
        case let .writeFailed(path, reason): return "TensorBoard event file \(path): write failed: \(reason)"
        case let .closed(path): return "TensorBoard event file \(path): written to after close()"
        case let .invalidTag(tag, reason): return "TensorBoard tag \"\(tag)\": \(reason)"
        case let .invalidImage(tag, reason): return "TensorBoard image \"\(tag)\": \(reason)"
        }
    }
}

/// Writes TensorBoard event files (`events.out.tfevents.<unix time>.<hostname>`) without
/// TensorFlow: scalar and image summaries as `Event` protocol buffers in TFRecord framing.
///
/// The file is an append-only log written through a stdio buffer: records reach the disk
/// when the buffer fills, at `flush()` and at `close()`. TensorBoard reads a file while it
/// grows, and ignores a trailing record cut short by a crash.
///
/// Not thread-safe: one writer per process (rank 0), used from one thread.
public final class TensorBoardWriter {
    /// The directory given to `init`, and the event file created in it.
    public let directory: String
    public let path: String
    private var file: UnsafeMutablePointer<FILE>?

    /// Creates `directory` if needed (like `mkdir -p`) and a new event file in it, and writes
    /// the file-version record. An existing file of the same name (a second writer in the
    /// same second) is never overwritten: the new file gets a `.1`, `.2`, ... suffix.
    public init(directory: String) throws {
        self.directory = directory
        do {
            try Directories.make(directory)
        } catch let e as DirectoryCreationError {
            throw TensorBoardError.cannotCreateDirectory(path: directory, reason: e.reason)
        }
        let wallTime = TensorBoardWriter.wallClock()
        let base = directory + "/events.out.tfevents.\(Int(wallTime)).\(TensorBoardWriter.hostname())"
        var candidate = base
        var fd: Int32 = -1
        for attempt in 1...1000 {
            fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
            candidate = base + ".\(attempt)"
        }
        path = candidate
        guard fd >= 0 else { throw TensorBoardError.cannotOpen(path: candidate, reason: TensorBoardWriter.reason()) }
        guard let stream = fdopen(fd, "ab") else {
            let reason = TensorBoardWriter.reason()
            Glibc.close(fd)
            throw TensorBoardError.cannotOpen(path: candidate, reason: reason)
        }
        setvbuf(stream, nil, _IOFBF, 1 << 16)
        file = stream
        try append(TensorBoardEvent.fileVersion(wallTime: wallTime))
        // Make the file recognizable at once, even if the run dies before its first flush.
        try flush()
    }

    deinit { close() }

    /// Appends a scalar summary (stored as a 32-bit float, TensorBoard's `simple_value`).
    /// `wallTime` is Unix seconds, now if nil.
    public func scalar(_ tag: String, _ value: Double, step: Int, wallTime: Double? = nil) throws {
        try TensorBoardWriter.check(tag: tag)
        try append(TensorBoardEvent.scalar(tag: tag, value: Float(value), step: Int64(step),
                                           wallTime: wallTime ?? TensorBoardWriter.wallClock()))
    }

    /// Appends an image summary: `png` is an encoded PNG (see `PNG.encode`) of `width` x
    /// `height` pixels with `channels` 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
    public func image(_ tag: String, png: [UInt8], width: Int, height: Int, channels: Int, step: Int) throws {
        try TensorBoardWriter.check(tag: tag)
        guard (1...4).contains(channels) else {
            throw TensorBoardError.invalidImage(tag: tag, reason: "channels must be 1 to 4, got \(channels)")
        }
        guard (1...Int(Int32.max)).contains(width), (1...Int(Int32.max)).contains(height) else {
            throw TensorBoardError.invalidImage(tag: tag, reason: "size \(width)x\(height) out of range")
        }
        guard png.starts(with: PNG.signature) else {
            throw TensorBoardError.invalidImage(tag: tag, reason: "the bytes are not a PNG (signature missing)")
        }
        try append(TensorBoardEvent.image(tag: tag, png: png, width: width, height: height, colorspace: channels,
                                          step: Int64(step), wallTime: TensorBoardWriter.wallClock()))
    }

    /// Marks a (re)start at `step`: TensorBoard then drops every event of this run (any file in
    /// the directory) read before this one whose step is `step` or later. After resuming from
    /// a checkpoint at global step S, call `sessionStart(step: S + 1)` before writing anything,
    /// so the events a crashed run wrote after its last checkpoint disappear from the charts.
    public func sessionStart(step: Int) throws {
        try append(TensorBoardEvent.sessionStart(step: Int64(step), wallTime: TensorBoardWriter.wallClock()))
    }

    /// Pushes buffered records to the file (stdio fflush; no fsync).
    public func flush() throws {
        guard let file else { throw TensorBoardError.closed(path: path) }
        if fflush(file) != 0 { throw TensorBoardError.writeFailed(path: path, reason: TensorBoardWriter.reason()) }
    }

    /// Flushes and closes the file; later writes throw `.closed`. Calling it again does nothing.
    /// A failure to flush at this point cannot be reported: call `flush()` first to see it.
    public func close() {
        guard let f = file else { return }
        file = nil
        fclose(f)
    }

    // MARK: - Internals

    private func append(_ event: [UInt8]) throws {
        guard let file else { throw TensorBoardError.closed(path: path) }
        let record = TFRecord.frame(event)
        let written = record.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        if written != record.count {
            throw TensorBoardError.writeFailed(path: path, reason: TensorBoardWriter.reason())
        }
    }

    static func check(tag: String) throws {
        guard !tag.isEmpty else { throw TensorBoardError.invalidTag(tag: tag, reason: "is empty") }
        guard !tag.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw TensorBoardError.invalidTag(tag: tag, reason: "contains a control character")
        }
    }

    static func wallClock() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer).filter { $0 != "/" }
        return name.isEmpty ? "localhost" : name
    }

    static func reason(_ code: Int32 = errno) -> String {
        guard code != 0, let text = strerror(code) else { return "unknown error" }
        return String(cString: text)
    }
}

