import CZlib
import DistTrainIO


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

/// The PNG decoder: only tests read PNG files (to check what the trainer and commands wrote),
/// so it lives here rather than in the shipped code.
extension PNG {
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

    static func parseHeader(_ data: ArraySlice<UInt8>) throws -> (width: Int, height: Int, channels: Int) {
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
    static func inflate(_ compressed: [UInt8], expected: Int) throws -> [UInt8] {
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

    static func unfilter(_ raw: [UInt8], height: Int, rowBytes: Int, bpp: Int) throws -> [UInt8] {
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

    public static func readBigEndian(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }
}
