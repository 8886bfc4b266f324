/// Why PNG files could not be joined into an animation.
public enum AnimatedPNGError: Error, CustomStringConvertible, Equatable, Sendable {
    case noFrames
    case notPNG(path: String, reason: String)
    case frameMismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case .noFrames: return "animated PNG: no frames to join"
        case let .notPNG(path, reason): return "\(path): cannot use as an animation frame: \(reason)"
        case let .frameMismatch(path, reason): return "\(path): does not match the first frame: \(reason)"
        }
    }
}

/// Animated PNG (APNG): still PNG files of the same size and colour type joined into one
/// animation that browsers, GitHub and most image viewers play, and that other viewers show
/// as its first frame.
///
/// No pixel is decoded: a frame's compressed image data (its IDAT chunks) is already what an
/// APNG frame holds, so the first frame's IDAT stays as it is (the default image), every
/// later frame's data is re-framed as `fdAT` chunks with a sequence number, and an `acTL`
/// chunk plus one `fcTL` per frame give the frame count and timing.
public enum AnimatedPNG {
    /// One PNG file split into chunks.
    struct Chunk {
        let type: String
        let data: ArraySlice<UInt8>
    }

    /// Joins the PNG files `frames` (bytes, with the path each came from for messages) into one
    /// animation that shows each frame for `delayMilliseconds` and loops `loops` times (0: forever).
    public static func join(_ frames: [(path: String, bytes: [UInt8])], delayMilliseconds: Int, loops: Int = 0) throws -> [UInt8] {
        guard let first = frames.first else { throw AnimatedPNGError.noFrames }
        let parsed = try frames.map { try chunks(of: $0.bytes, path: $0.path) }
        let header = parsed[0].first { $0.type == "IHDR" }!.data
        for (i, f) in parsed.enumerated().dropFirst() {
            let h = f.first { $0.type == "IHDR" }!.data
            guard h.elementsEqual(header) else {
                throw AnimatedPNGError.frameMismatch(path: frames[i].path, reason: "its size or colour type differs from \(first.path)")
            }
        }
        let width = readBigEndian(header, at: 0), height = readBigEndian(header, at: 4)
        // Delay as a fraction: numerator/1000 seconds, clamped to what 16 bits hold.
        let delay = UInt16(clamping: max(0, delayMilliseconds))

        var out = signature
        appendChunk("IHDR", header, to: &out)
        var control: [UInt8] = []
        appendBigEndian(UInt32(frames.count), to: &control)
        appendBigEndian(UInt32(clamping: max(0, loops)), to: &control)
        appendChunk("acTL", control[...], to: &out)
        var sequence: UInt32 = 0
        for (i, f) in parsed.enumerated() {
            var fc: [UInt8] = []
            appendBigEndian(sequence, to: &fc); sequence += 1
            appendBigEndian(width, to: &fc)
            appendBigEndian(height, to: &fc)
            appendBigEndian(0, to: &fc)              // x offset
            appendBigEndian(0, to: &fc)              // y offset
            fc += [UInt8(delay >> 8), UInt8(delay & 0xFF), 0x03, 0xE8]  // delay / 1000 s
            fc += [0, 0]                              // dispose: none; blend: source
            appendChunk("fcTL", fc[...], to: &out)
            for chunk in f where chunk.type == "IDAT" {
                if i == 0 {
                    appendChunk("IDAT", chunk.data, to: &out)
                } else {
                    var data: [UInt8] = []
                    appendBigEndian(sequence, to: &data); sequence += 1
                    data += chunk.data
                    appendChunk("fdAT", data[...], to: &out)
                }
            }
        }
        appendChunk("IEND", [][...], to: &out)
        return out
    }

    /// Reads and joins PNG files, then writes the animation atomically.
    public static func write(frames paths: [String], to path: String, delayMilliseconds: Int) throws {
        let frames = try paths.map { (path: $0, bytes: try FileBytes.read($0)) }
        try AtomicFile.write(join(frames, delayMilliseconds: delayMilliseconds), to: path)
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The chunks of a PNG file, with its structure checked (signature, lengths, CRCs, IHDR
    /// first, at least one IDAT, IEND last); ancillary chunks are kept but not used.
    static func chunks(of bytes: [UInt8], path: String) throws -> [Chunk] {
        guard bytes.count >= 8, bytes[0..<8].elementsEqual(signature) else {
            throw AnimatedPNGError.notPNG(path: path, reason: "no PNG signature")
        }
        var out: [Chunk] = []
        var pos = 8
        while pos < bytes.count {
            guard pos + 12 <= bytes.count else { throw AnimatedPNGError.notPNG(path: path, reason: "truncated at byte \(pos)") }
            let length = Int(readBigEndian(bytes[...], at: pos))
            guard length <= bytes.count - pos - 12 else {
                throw AnimatedPNGError.notPNG(path: path, reason: "chunk at byte \(pos) runs past the end of the file")
            }
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            let data = bytes[(pos + 8)..<(pos + 8 + length)]
            let stored = readBigEndian(bytes[...], at: pos + 8 + length)
            guard stored == PNG.crc(type: Array(bytes[(pos + 4)..<(pos + 8)]), data: data) else {
                throw AnimatedPNGError.notPNG(path: path, reason: "chunk \(type) at byte \(pos) has a bad CRC")
            }
            out.append(Chunk(type: type, data: data))
            pos += 12 + length
            if type == "IEND" { break }
        }
        guard out.first?.type == "IHDR", out.first?.data.count == 13 else { throw AnimatedPNGError.notPNG(path: path, reason: "IHDR is not the first chunk") }
        guard out.last?.type == "IEND" else { throw AnimatedPNGError.notPNG(path: path, reason: "no IEND chunk") }
        guard out.contains(where: { $0.type == "IDAT" }) else { throw AnimatedPNGError.notPNG(path: path, reason: "no image data") }
        guard !out.contains(where: { $0.type == "acTL" }) else { throw AnimatedPNGError.notPNG(path: path, reason: "already animated") }
        return out
    }

    static func appendChunk(_ type: String, _ data: ArraySlice<UInt8>, to png: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        appendBigEndian(UInt32(data.count), to: &png)
        png += typeBytes
        png += data
        appendBigEndian(PNG.crc(type: typeBytes, data: data), to: &png)
    }

    static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func readBigEndian(_ bytes: ArraySlice<UInt8>, at i: Int) -> UInt32 {
        let b = bytes.startIndex + i
        return UInt32(bytes[b]) << 24 | UInt32(bytes[b + 1]) << 16 | UInt32(bytes[b + 2]) << 8 | UInt32(bytes[b + 3])
    }
}
