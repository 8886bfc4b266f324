import CZlib

/// A decoded 8-bit PNG image.
public struct PNGImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 for grayscale, 3 for RGB.
    public let channels: Int
    /// `height * width * channels` bytes, rows top to bottom, channels interleaved.
    public let pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

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

/// PNG encoding and decoding for 8-bit grayscale and RGB images, deflate by zlib.
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

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

    /// Reads and decodes the PNG at `path`. Throws `FileError` for I/O problems and
    /// `PNGError.inFile` for bad contents.
    public static func read(path: String) throws -> PNGImage {
        let bytes = try AtomicFile.readAll(path: path)
        do {
            return try decode(bytes)
        } catch let error as PNGError {
            throw PNGError.inFile(path: path, error)
        }
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

    /// Decodes an 8-bit grayscale or RGB, non-interlaced PNG, verifying every chunk's CRC.
    public static func decode(_ bytes: [UInt8]) throws -> PNGImage {
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else { throw PNGError.notPNG }
        var pos = 8
        var parsed: (width: Int, height: Int, channels: Int)?
        var compressed: [UInt8] = []
        var sawIEND = false
        while !sawIEND {
            guard pos + 8 <= bytes.count else {
                throw PNGError.truncated("data ends at byte \(bytes.count) before the IEND chunk")
            }
            let length = Int(readBigEndian(bytes, at: pos))
            guard length <= Int(Int32.max) else { throw PNGError.badChunk("chunk at byte \(pos) has length \(length)") }
            let typeBytes = Array(bytes[pos + 4..<pos + 8])
            guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw PNGError.badChunk("chunk at byte \(pos) has an invalid type \(typeBytes)")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard pos + 12 + length <= bytes.count else {
                throw PNGError.truncated("chunk \(type) at byte \(pos) needs \(12 + length) bytes, \(bytes.count - pos) left")
            }
            let data = bytes[pos + 8..<pos + 8 + length]
            guard readBigEndian(bytes, at: pos + 8 + length) == crc(type: typeBytes, data: data) else {
                throw PNGError.badCRC(chunk: type, offset: pos)
            }
            if parsed == nil && type != "IHDR" { throw PNGError.badChunk("first chunk is \(type), expected IHDR") }
            switch type {
            case "IHDR":
                guard parsed == nil else { throw PNGError.badChunk("second IHDR chunk at byte \(pos)") }
                parsed = try parseHeader(data)
            case "IDAT":
                compressed.append(contentsOf: data)
            case "IEND":
                sawIEND = true
            case "PLTE":
                break  // a suggested palette for RGB; not needed for true color
            default:
                // Ancillary chunks (lowercase first letter) may be skipped; critical ones may not.
                if typeBytes[0] < 0x61 { throw PNGError.unsupported("critical chunk \(type)") }
            }
            pos += 12 + length
        }
        guard let header = parsed else { throw PNGError.badChunk("no IHDR chunk") }
        guard !compressed.isEmpty else { throw PNGError.badChunk("no IDAT chunk") }

        let rowBytes = header.width * header.channels
        let (rawSize, overflow) = header.height.multipliedReportingOverflow(by: rowBytes + 1)
        // Deflate cannot expand more than ~1032:1; refuse absurd sizes before allocating.
        guard !overflow, rawSize < Int(UInt32.max), rawSize / 1032 <= compressed.count + 64 else {
            throw PNGError.corruptData("\(header.width)x\(header.height) pixels cannot come from \(compressed.count) compressed bytes")
        }
        let raw = try inflate(compressed, expected: rawSize)
        let pixels = try unfilter(raw, height: header.height, rowBytes: rowBytes, bpp: header.channels)
        return PNGImage(width: header.width, height: header.height, channels: header.channels, pixels: pixels)
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

    private static func parseHeader(_ data: ArraySlice<UInt8>) throws -> (width: Int, height: Int, channels: Int) {
        guard data.count == 13 else { throw PNGError.badHeader("IHDR has \(data.count) bytes, expected 13") }
        let d = Array(data)
        let width = Int(readBigEndian(d, at: 0)), height = Int(readBigEndian(d, at: 4))
        guard (1...Int(Int32.max)).contains(width), (1...Int(Int32.max)).contains(height) else {
            throw PNGError.badHeader("size \(width)x\(height)")
        }
        let (depth, color, compression, filter, interlace) = (d[8], d[9], d[10], d[11], d[12])
        guard compression == 0 else { throw PNGError.badHeader("compression method \(compression)") }
        guard filter == 0 else { throw PNGError.badHeader("filter method \(filter)") }
        guard interlace <= 1 else { throw PNGError.badHeader("interlace method \(interlace)") }
        guard interlace == 0 else { throw PNGError.unsupported("Adam7 interlacing") }
        let channels: Int
        switch color {
        case 0: channels = 1
        case 2: channels = 3
        case 3: throw PNGError.unsupported("palette color (type 3)")
        case 4: throw PNGError.unsupported("grayscale with alpha (type 4)")
        case 6: throw PNGError.unsupported("RGB with alpha (type 6)")
        default: throw PNGError.badHeader("color type \(color)")
        }
        guard depth == 8 else {
            if [1, 2, 4, 16].contains(depth) { throw PNGError.unsupported("bit depth \(depth)") }
            throw PNGError.badHeader("bit depth \(depth)")
        }
        return (width, height, channels)
    }

    /// Decompresses a zlib stream that must produce exactly `expected` bytes.
    private static func inflate(_ compressed: [UInt8], expected: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw PNGError.corruptData("zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        guard compressed.count < Int(UInt32.max) else { throw PNGError.unsupported("more than 4 GiB of image data") }
        // One spare byte tells "exactly right" from "too long".
        var out = [UInt8](repeating: 0, count: expected + 1)
        var input = compressed
        let status = input.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = inp.baseAddress
                stream.avail_in = UInt32(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        let produced = Int(stream.total_out)
        switch status {
        case Z_STREAM_END:
            guard produced == expected else {
                throw PNGError.corruptData("\(produced) bytes of filtered pixel data, expected \(expected)")
            }
            out.removeLast()
            return out
        case Z_OK, Z_BUF_ERROR:
            if stream.avail_out == 0 {
                throw PNGError.corruptData("more filtered pixel data than the \(expected) bytes IHDR promises")
            }
            throw PNGError.corruptData("compressed data ends early after \(produced) of \(expected) bytes")
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
            throw PNGError.corruptData(message)
        }
    }

    private static func unfilter(_ raw: [UInt8], height: Int, rowBytes: Int, bpp: Int) throws -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: height * rowBytes)
        try raw.withUnsafeBufferPointer { src in
            try pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let type = src[y * (rowBytes + 1)]
                    let line = UnsafeBufferPointer(rebasing: src[y * (rowBytes + 1) + 1..<(y + 1) * (rowBytes + 1)])
                    let base = y * rowBytes
                    let up = y > 0 ? base - rowBytes : -1  // -1: no previous row, treat as zeros
                    switch type {
                    case 0:
                        for x in 0..<rowBytes { dst[base + x] = line[x] }
                    case 1:
                        for x in 0..<rowBytes {
                            dst[base + x] = line[x] &+ (x >= bpp ? dst[base + x - bpp] : 0)
                        }
                    case 2:
                        for x in 0..<rowBytes { dst[base + x] = line[x] &+ (up >= 0 ? dst[up + x] : 0) }
                    case 3:
                        for x in 0..<rowBytes {
                            let a = x >= bpp ? Int(dst[base + x - bpp]) : 0
                            let b = up >= 0 ? Int(dst[up + x]) : 0
                            dst[base + x] = line[x] &+ UInt8((a + b) / 2)
                        }
                    case 4:
                        for x in 0..<rowBytes {
                            let a = x >= bpp ? dst[base + x - bpp] : 0
                            let b = up >= 0 ? dst[up + x] : 0
                            let c = x >= bpp && up >= 0 ? dst[up + x - bpp] : 0
                            dst[base + x] = line[x] &+ paeth(a, b, c)
                        }
                    default:
                        throw PNGError.badFilter(row: y, type: Int(type))
                    }
                }
            }
        }
        return pixels
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

    private static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
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

    private static func crc<C: Collection>(type: [UInt8], data: C) -> UInt32 where C.Element == UInt8 {
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

    private static func readBigEndian(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }
}
