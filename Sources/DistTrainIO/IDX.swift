import CZlib
import Glibc

/// A problem with an IDX file (MNIST's format). Descriptions name the path and the problem.
public enum IDXError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No file at `path`.
    case fileNotFound(path: String)
    /// The file exists but cannot be opened or read (permissions, a directory, an I/O error).
    case unreadable(path: String, reason: String)
    /// The magic number is not one this reader accepts.
    case notIDX(path: String, magic: UInt32, expected: [UInt32])
    /// The header's dimensions are impossible (zero rows, a negative count, an overflowing size).
    case wrongDimensions(path: String, dimensions: [Int], reason: String)
    /// The (uncompressed) data ends early. `records` is nil when the header itself is cut short.
    case truncated(path: String, records: Int?, expectedBytes: Int, actualBytes: Int)
    /// The (uncompressed) data is longer than the header promises.
    case trailingData(path: String, records: Int, expectedBytes: Int, actualBytes: Int)
    /// The gzip stream is cut short or damaged (zlib's CRC/length check or a bad deflate block).
    case corruptGzip(path: String, reason: String)
    /// A label is not below the number of classes; `record` is the index in the whole file.
    case labelOutOfRange(path: String, record: Int, value: Int, classes: Int)
    /// The requested shard does not lie within the file's records.
    case recordsOutOfRange(path: String, requested: Range<Int>, count: Int)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): no such file"
        case let .unreadable(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .notIDX(path, magic, expected):
            let wanted = expected.map { "\(IDX.hex($0)) (\(IDX.kindName($0) ?? "?"))" }.joined(separator: " or ")
            if let kind = IDX.kindName(magic) {
                return "\(path): wrong IDX file: magic \(IDX.hex(magic)) (\(kind)), expected \(wanted)"
            }
            return "\(path): not an IDX file: magic \(IDX.hex(magic)), expected \(wanted)"
        case let .wrongDimensions(path, dimensions, reason):
            return "\(path): bad IDX dimensions \(dimensions): \(reason)"
        case let .truncated(path, records, expected, actual):
            if let records {
                return "\(path): truncated: header promises \(records) records (\(expected) bytes), file has \(actual) bytes"
            }
            return "\(path): truncated: the IDX header needs \(expected) bytes, file has \(actual) bytes"
        case let .trailingData(path, records, expected, actual):
            return "\(path): trailing data: header promises \(records) records (\(expected) bytes), file has \(actual) bytes"
        case let .corruptGzip(path, reason):
            return "\(path): corrupt gzip stream: \(reason)"
        case let .labelOutOfRange(path, record, value, classes):
            return "\(path): label \(value) at record \(record) is out of range for \(classes) classes"
        case let .recordsOutOfRange(path, requested, count):
            return "\(path): records \(requested.lowerBound)..<\(requested.upperBound) requested, but the file has \(count) records"
        }
    }
}

/// The header of an IDX file: what it holds and how many records.
public struct IDXHeader: Equatable, Sendable {
    /// Whether the file holds images (magic 2051) or labels (magic 2049).
    public enum Kind: Equatable, Sendable { case images, labels }

    public let kind: Kind
    /// Number of records (images or labels) in the file.
    public let count: Int
    /// Image height; 1 for labels.
    public let rows: Int
    /// Image width; 1 for labels.
    public let cols: Int

    public init(kind: Kind, count: Int, rows: Int, cols: Int) {
        self.kind = kind
        self.count = count
        self.rows = rows
        self.cols = cols
    }

    /// Bytes before the payload: magic plus one int32 per dimension.
    var headerBytes: Int { kind == .images ? 16 : 8 }
    /// Bytes per record.
    var recordBytes: Int { rows * cols }
}

/// A contiguous shard of an IDX image file, row-major uint8 pixels.
public struct IDXImages: Sendable {
    /// Number of images in this shard.
    public let count: Int
    public let rows: Int
    public let cols: Int
    /// `count * rows * cols` pixels, image after image, each row-major.
    public let pixels: [UInt8]
    /// Index in the file of the first image of the shard.
    public let firstRecord: Int

    public init(count: Int, rows: Int, cols: Int, pixels: [UInt8], firstRecord: Int) {
        self.count = count
        self.rows = rows
        self.cols = cols
        self.pixels = pixels
        self.firstRecord = firstRecord
    }
}

/// A contiguous shard of an IDX label file.
public struct IDXLabels: Sendable {
    /// Number of labels in this shard.
    public let count: Int
    public let labels: [UInt8]
    /// Index in the file of the first label of the shard.
    public let firstRecord: Int

    public init(count: Int, labels: [UInt8], firstRecord: Int) {
        self.count = count
        self.labels = labels
        self.firstRecord = firstRecord
    }
}

/// Reader for MNIST's IDX files, gzip-compressed or raw.
///
/// A shard read keeps only its records in memory but still streams the whole file, so every
/// rank verifies the same things: exact payload length and, for gzip, zlib's CRC and length.
public enum IDX {
    static let imagesMagic: UInt32 = 0x0000_0803
    static let labelsMagic: UInt32 = 0x0000_0801

    /// Reads only the header of an images or labels file.
    public static func header(path: String) throws -> IDXHeader {
        let source = try Source(path: path)
        return try readHeader(source, accepting: [imagesMagic, labelsMagic])
    }

    /// Reads the images of `records` (all by default) from an IDX images file (magic 2051).
    public static func readImages(path: String, records: Range<Int>? = nil) throws -> IDXImages {
        let source = try Source(path: path)
        let header = try readHeader(source, accepting: [imagesMagic])
        let shard = try checkShard(records, header: header, path: path)
        let pixels = try readPayload(source, header: header, keeping: shard)
        return IDXImages(count: shard.count, rows: header.rows, cols: header.cols, pixels: pixels,
                         firstRecord: shard.lowerBound)
    }

    /// Reads the labels of `records` (all by default) from an IDX labels file (magic 2049).
    ///
    /// Every label in the file, not just the shard, must be below `classes`.
    public static func readLabels(path: String, records: Range<Int>? = nil, classes: Int) throws -> IDXLabels {
        let source = try Source(path: path)
        let header = try readHeader(source, accepting: [labelsMagic])
        let shard = try checkShard(records, header: header, path: path)
        var firstBad: (record: Int, value: UInt8)?
        let labels = try readPayload(source, header: header, keeping: shard) { offset, chunk in
            guard firstBad == nil else { return }
            for (i, value) in chunk.enumerated() where Int(value) >= classes {
                firstBad = (offset + i, value)
                return
            }
        }
        // Reported only after the whole stream checked out: a damaged gzip explains bad labels.
        if let bad = firstBad {
            throw IDXError.labelOutOfRange(path: path, record: bad.record, value: Int(bad.value), classes: classes)
        }
        return IDXLabels(count: shard.count, labels: labels, firstRecord: shard.lowerBound)
    }

    // MARK: - Internals

    private static func checkShard(_ records: Range<Int>?, header: IDXHeader, path: String) throws -> Range<Int> {
        let shard = records ?? 0..<header.count
        guard shard.lowerBound >= 0, shard.upperBound <= header.count else {
            throw IDXError.recordsOutOfRange(path: path, requested: shard, count: header.count)
        }
        return shard
    }

    private static func readHeader(_ source: Source, accepting magics: [UInt32]) throws -> IDXHeader {
        var bytes = [UInt8](repeating: 0, count: 16)
        let got = try bytes.withUnsafeMutableBytes { try source.read(into: $0.baseAddress!, count: 4) }
        guard got == 4 else {
            throw IDXError.truncated(path: source.path, records: nil, expectedBytes: 8, actualBytes: got)
        }
        let magic = bigEndian(bytes, at: 0)
        guard magics.contains(magic) else {
            throw IDXError.notIDX(path: source.path, magic: magic, expected: magics)
        }
        let kind: IDXHeader.Kind = magic == imagesMagic ? .images : .labels
        let headerBytes = kind == .images ? 16 : 8
        let rest = try bytes.withUnsafeMutableBytes {
            try source.read(into: $0.baseAddress! + 4, count: headerBytes - 4)
        }
        guard rest == headerBytes - 4 else {
            throw IDXError.truncated(path: source.path, records: nil, expectedBytes: headerBytes, actualBytes: 4 + rest)
        }
        let dims = stride(from: 4, to: headerBytes, by: 4).map { Int(bigEndian(bytes, at: $0)) }
        // The format stores signed int32s.
        guard dims.allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw IDXError.wrongDimensions(path: source.path, dimensions: dims.map { Int(Int32(truncatingIfNeeded: $0)) },
                                           reason: "negative dimension")
        }
        let header = kind == .images
            ? IDXHeader(kind: kind, count: dims[0], rows: dims[1], cols: dims[2])
            : IDXHeader(kind: kind, count: dims[0], rows: 1, cols: 1)
        guard header.rows > 0, header.cols > 0 else {
            throw IDXError.wrongDimensions(path: source.path, dimensions: dims, reason: "images must have at least one row and column")
        }
        let (payload, overflow) = header.count.multipliedReportingOverflow(by: header.recordBytes)
        guard !overflow, payload <= Int.max - headerBytes else {
            throw IDXError.wrongDimensions(path: source.path, dimensions: dims, reason: "data size overflows")
        }
        // A raw file's size is known up front: a header that promises more (or less) than the
        // file holds stops here, before anything is allocated or streamed.
        if let size = source.rawFileSize {
            let expected = headerBytes + payload
            if size < expected {
                throw IDXError.truncated(path: source.path, records: header.count, expectedBytes: expected, actualBytes: size)
            }
            if size > expected {
                throw IDXError.trailingData(path: source.path, records: header.count, expectedBytes: expected, actualBytes: size)
            }
        }
        return header
    }

    /// Streams the payload and everything after it, keeping the bytes of the `keeping` records.
    ///
    /// `inspect` sees every payload chunk with its byte offset in the payload.
    private static func readPayload(_ source: Source, header: IDXHeader, keeping shard: Range<Int>,
                                     inspect: ((Int, UnsafeRawBufferPointer) -> Void)? = nil) throws -> [UInt8] {
        let payloadBytes = header.count * header.recordBytes
        let keep = shard.lowerBound * header.recordBytes..<shard.upperBound * header.recordBytes
        // Grown as the bytes arrive (not sized from the header up front), so a gzip file whose
        // header promises terabytes allocates only what it really holds before it is refused.
        var kept: [UInt8] = []
        kept.reserveCapacity(min(keep.count, 1 << 26))

        let scratchSize = 1 << 16
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 16)
        defer { scratch.deallocate() }
        var offset = 0  // payload bytes seen so far (may run past the payload into trailing data)
        while true {
            let got = try source.read(into: scratch, count: scratchSize)
            if got == 0 { break }
            let chunk = offset..<offset + got
            let overlap = chunk.clamped(to: keep)
            if !overlap.isEmpty {
                kept.append(contentsOf: UnsafeRawBufferPointer(start: scratch + (overlap.lowerBound - offset), count: overlap.count))
            }
            if let inspect {
                let inPayload = chunk.clamped(to: 0..<payloadBytes)
                if !inPayload.isEmpty {
                    inspect(inPayload.lowerBound,
                            UnsafeRawBufferPointer(start: scratch + (inPayload.lowerBound - offset), count: inPayload.count))
                }
            }
            offset += got
        }
        let expected = header.headerBytes + payloadBytes
        let actual = header.headerBytes + offset
        if actual < expected {
            throw IDXError.truncated(path: source.path, records: header.count, expectedBytes: expected, actualBytes: actual)
        }
        if actual > expected {
            throw IDXError.trailingData(path: source.path, records: header.count, expectedBytes: expected, actualBytes: actual)
        }
        return kept
    }

    private static func bigEndian(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// "images" or "labels" for the two known magic numbers.
    static func kindName(_ magic: UInt32) -> String? {
        switch magic {
        case imagesMagic: return "images"
        case labelsMagic: return "labels"
        default: return nil
        }
    }

    /// An open IDX file read through zlib, which passes raw files through unchanged.
    private final class Source {
        let path: String
        let isGzip: Bool
        /// The size of an uncompressed regular file (nil for gzip, pipes and devices).
        let rawFileSize: Int?
        private let file: gzFile

        init(path: String) throws {
            self.path = path
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let code = errno
                if code == ENOENT { throw IDXError.fileNotFound(path: path) }
                throw IDXError.unreadable(path: path, reason: FileError.reason(code))
            }
            // Gzip is recognised by its magic bytes, whatever the file is called.
            var magic: [UInt8] = [0, 0]
            var got = 0
            while got < 2 {
                let n = magic.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, 2 - got) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 {
                    let reason = FileError.reason()
                    close(fd)
                    throw IDXError.unreadable(path: path, reason: reason)
                }
                if n == 0 { break }
                got += n
            }
            isGzip = got == 2 && magic == [0x1F, 0x8B]
            var info = stat()
            rawFileSize = !isGzip && fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : nil
            guard lseek(fd, 0, SEEK_SET) == 0, let handle = gzdopen(fd, "rb") else {
                let reason = FileError.reason()
                close(fd)
                throw IDXError.unreadable(path: path, reason: reason)
            }
            file = handle
            gzbuffer(file, 1 << 17)
        }

        deinit { gzclose(file) }

        /// Reads up to `count` bytes; fewer only at the end of the data. Stream damage throws.
        func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
            var done = 0
            while done < count {
                let n = gzread(file, buffer + done, UInt32(min(count - done, 1 << 30)))
                if n <= 0 { break }
                done += Int(n)
            }
            try checkStream()
            return done
        }

        /// zlib notes a cut-short gzip as Z_BUF_ERROR and a bad block or CRC as Z_DATA_ERROR;
        /// gzread itself may just return 0, so the state has to be asked.
        private func checkStream() throws {
            let savedErrno = errno
            var code: Int32 = Z_OK
            let message = gzerror(file, &code)
            if code == Z_OK { return }
            if code == Z_ERRNO { throw IDXError.unreadable(path: path, reason: FileError.reason(savedErrno)) }
            var text = message.map { String(cString: $0) } ?? ""
            // gzdopen names the stream "<fd:N>" and zlib prefixes that to its message.
            if text.hasPrefix("<fd:"), let end = text.firstIndex(of: ">") {
                text = String(text[text.index(after: end)...].drop { $0 == ":" || $0 == " " })
            }
            if text.isEmpty { text = "zlib error \(code)" }
            if isGzip { throw IDXError.corruptGzip(path: path, reason: text) }
            throw IDXError.unreadable(path: path, reason: text)
        }
    }
}
