import CZlib

/// Why bytes could not be decoded as a PNG this decoder supports.
public enum PNGError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The 8-byte PNG signature is missing.
    case notPNG
    /// The data ends inside a chunk or before IEND.
    case truncated(String)
    /// A chunk's CRC does not match its type and data.
    case badCRC(chunk: String, offset: Int)
    /// A chunk is malformed (bad length or type, a misplaced or missing IHDR, IDAT, IEND).
    case badChunk(String)
    /// IHDR holds impossible values.
    case badHeader(String)
    /// A valid PNG feature this decoder does not handle (palette, 16-bit, alpha, interlacing).
    case unsupported(String)
    /// The compressed image data is damaged or has the wrong size.
    case corruptData(String)
    /// A scanline starts with a filter type other than 0...4.
    case badFilter(row: Int, type: Int)
    /// The encoder was given an impossible image (size, channels or pixel count).
    case invalidImage(String)
    /// One of the errors above, in the named file.
    indirect case inFile(path: String, PNGError)

    public var description: String {
        switch self {
        case .notPNG: return "not a PNG file (signature missing)"
        case let .truncated(what): return "truncated PNG: \(what)"
        case let .badCRC(chunk, offset): return "PNG chunk \(chunk) at byte \(offset) has a bad CRC"
        case let .badChunk(what): return "bad PNG chunk: \(what)"
        case let .badHeader(what): return "bad PNG header: \(what)"
        case let .unsupported(what): return "unsupported PNG: \(what)"
        case let .corruptData(what): return "corrupt PNG image data: \(what)"
        case let .badFilter(row, type): return "corrupt PNG image data: row \(row) has filter type \(type)"
        case let .invalidImage(what): return "cannot encode PNG: \(what)"
        case let .inFile(path, error): return "\(path): \(error)"
        }
    }
}

/// PNG encoding (the decoder lives in the tests' support code: only tests read PNGs) for 8-bit grayscale and RGB images, deflate by zlib.
public enum PNG {
    /// The 8 bytes every PNG starts with. Public, like `paeth` and `crc`, for the test-only
    /// decoder (Tests/IOTestSupport), which a plain `swift build` compiles without testing access.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Encodes an 8-bit image: `channels` 1 (grayscale) or 3 (RGB), `pixels` row-major with
    /// `width * height * channels` bytes. Each row gets the filter that compresses it best.
    ///
    /// Impossible arguments are a programming error and stop the program (`write(path:...)`
    /// checks them and throws instead).
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> [UInt8] {
        encode(width: width, height: height, channels: channels, pixels: pixels, filter: nil, idatSize: 1 << 20)
    }

    /// Encodes the image and writes it atomically to `path`. Throws `PNGError.inFile` with
    /// `.invalidImage` for impossible arguments (nothing is written) and `FileError` for I/O.
    public static func write(path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        if let problem = checkImage(width: width, height: height, channels: channels, count: pixels.count) {
            throw PNGError.inFile(path: path, .invalidImage(problem))
        }
        try AtomicFile.write(encode(width: width, height: height, channels: channels, pixels: pixels), to: path)
    }

    /// `filter` forces one filter type for every row (tests); `idatSize` caps each IDAT chunk.
    static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8],
                       filter: UInt8?, idatSize: Int) -> [UInt8] {
        if let problem = checkImage(width: width, height: height, channels: channels, count: pixels.count) {
            preconditionFailure("cannot encode PNG: \(problem)")
        }
        let rowBytes = width * channels
        var filtered = [UInt8](repeating: 0, count: height * (rowBytes + 1))
        pixels.withUnsafeBufferPointer { src in
            filtered.withUnsafeMutableBufferPointer { dst in
                var candidate = [UInt8](repeating: 0, count: rowBytes)
                for y in 0..<height {
                    let cur = UnsafeBufferPointer(rebasing: src[y * rowBytes..<(y + 1) * rowBytes])
                    let prev = y > 0 ? UnsafeBufferPointer(rebasing: src[(y - 1) * rowBytes..<y * rowBytes]) : nil
                    let out = UnsafeMutableBufferPointer(rebasing: dst[y * (rowBytes + 1) + 1..<(y + 1) * (rowBytes + 1)])
                    var best: UInt8 = 0
                    if let forced = filter {
                        best = forced
                        applyFilter(forced, cur: cur, prev: prev, bpp: channels, into: out)
                    } else {
                        // Minimum sum of absolute (signed) differences: the usual cheap heuristic.
                        var bestScore = Int.max
                        candidate.withUnsafeMutableBufferPointer { cand in
                            for type: UInt8 in 0...4 {
                                applyFilter(type, cur: cur, prev: prev, bpp: channels, into: cand)
                                var score = 0
                                for b in cand { score += abs(Int(Int8(bitPattern: b))) }
                                if score < bestScore {
                                    bestScore = score
                                    best = type
                                    _ = out.update(fromContentsOf: cand)
                                }
                            }
                        }
                    }
                    dst[y * (rowBytes + 1)] = best
                }
            }
        }

        var png = signature
        var header: [UInt8] = []
        appendBigEndian(UInt32(width), to: &header)
        appendBigEndian(UInt32(height), to: &header)
        header += [8, channels == 1 ? 0 : 2, 0, 0, 0]  // bit depth, color type, deflate, filter method, no interlace
        appendChunk("IHDR", header, to: &png)
        let compressed = deflate(filtered)
        var start = 0
        repeat {
            let end = min(start + idatSize, compressed.count)
            appendChunk("IDAT", compressed[start..<end], to: &png)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [], to: &png)
        return png
    }


    // MARK: - Internals

    /// What is wrong with these encoder arguments, or nil.
    static func checkImage(width: Int, height: Int, channels: Int, count: Int) -> String? {
        guard (1...Int(Int32.max)).contains(width), (1...Int(Int32.max)).contains(height) else {
            return "size \(width)x\(height) out of range"
        }
        guard channels == 1 || channels == 3 else { return "channels must be 1 or 3, got \(channels)" }
        let (rowBytes, rowOverflow) = width.multipliedReportingOverflow(by: channels)
        let (needed, overflow) = rowBytes.multipliedReportingOverflow(by: height)
        guard !rowOverflow, !overflow else { return "\(width)x\(height)x\(channels) is too large" }
        guard needed == count else { return "\(width)x\(height)x\(channels) needs \(needed) bytes, got \(count)" }
        return nil
    }


    /// Writes filter `type` of row `cur` (with the row above `prev`, nil for the first row).
    private static func applyFilter(_ type: UInt8, cur: UnsafeBufferPointer<UInt8>, prev: UnsafeBufferPointer<UInt8>?,
                                    bpp: Int, into out: UnsafeMutableBufferPointer<UInt8>) {
        for x in 0..<cur.count {
            let a = x >= bpp ? cur[x - bpp] : 0
            let b = prev?[x] ?? 0
            let c = x >= bpp ? (prev?[x - bpp] ?? 0) : 0
            let predictor: UInt8
            switch type {
            case 1: predictor = a
            case 2: predictor = b
            case 3: predictor = UInt8((Int(a) + Int(b)) / 2)
            case 4: predictor = paeth(a, b, c)
            default: predictor = 0
            }
            out[x] = cur[x] &- predictor
        }
    }

    public static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    private static func deflate(_ data: [UInt8]) -> [UInt8] {
        var size = compressBound(UInt(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { d in
                compress2(o.baseAddress, &size, d.baseAddress, UInt(d.count), 9)
            }
        }
        // compressBound guarantees room; only memory exhaustion can fail here.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        out.removeLast(out.count - Int(size))
        return out
    }

    public static func crc<C: Collection>(type: [UInt8], data: C) -> UInt32 where C.Element == UInt8 {
        var value = type.withUnsafeBufferPointer { crc32(0, $0.baseAddress, 4) }
        value = data.withContiguousStorageIfAvailable { crc32(value, $0.baseAddress, UInt32($0.count)) }
            ?? Array(data).withUnsafeBufferPointer { crc32(value, $0.baseAddress, UInt32($0.count)) }
        return UInt32(truncatingIfNeeded: value)
    }

    private static func appendChunk<C: Collection>(_ type: String, _ data: C, to png: inout [UInt8]) where C.Element == UInt8 {
        let typeBytes = Array(type.utf8)
        appendBigEndian(UInt32(data.count), to: &png)
        png += typeBytes
        png += data
        appendBigEndian(crc(type: typeBytes, data: data), to: &png)
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

}
