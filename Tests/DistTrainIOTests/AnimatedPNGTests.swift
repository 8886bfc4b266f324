import Foundation
import Testing
@testable import DistTrainIO
import IOTestSupport

/// Animated PNG: the joined file's structure, read back chunk by chunk, and every frame's
/// pixels decoded again with the tests' own PNG decoder.
@Suite struct AnimatedPNGTests {
    static func frame(_ seed: Int, width: Int = 7, height: Int = 5) -> [UInt8] {
        (0..<(width * height)).map { UInt8(truncatingIfNeeded: $0 * 37 + seed * 101) }
    }

    /// A still PNG made of `header` and one frame's compressed data (what a viewer decodes).
    static func still(header: [UInt8], data: [UInt8]) -> [UInt8] {
        var png = AnimatedPNG.signature
        AnimatedPNG.appendChunk("IHDR", header[...], to: &png)
        AnimatedPNG.appendChunk("IDAT", data[...], to: &png)
        AnimatedPNG.appendChunk("IEND", [][...], to: &png)
        return png
    }

    @Test("three frames: acTL counts them, fcTL and fdAT carry consecutive sequence numbers, each frame decodes to its source pixels")
    func joinsFrames() throws {
        let sources = (0..<3).map { Self.frame($0) }
        // Small IDAT chunks, so a frame spans several chunks and each becomes its own fdAT.
        let files = sources.enumerated().map { (i, p) in
            (path: "f\(i).png", bytes: PNG.encode(width: 7, height: 5, channels: 1, pixels: p, filter: nil, idatSize: 16))
        }
        let apng = try AnimatedPNG.join(files, delayMilliseconds: 250, loops: 0)
        #expect(Array(apng[0..<8]) == AnimatedPNG.signature)
        let chunks = PNGChunks.of(apng)
        #expect(chunks.first?.0 == "IHDR" && chunks[1].0 == "acTL" && chunks.last?.0 == "IEND")
        let header = chunks[0].1
        #expect(PNGChunks.u32(chunks[1].1, 0) == 3 && PNGChunks.u32(chunks[1].1, 4) == 0)

        var sequence = 0
        var frames: [[UInt8]] = []
        for (type, data) in chunks {
            switch type {
            case "fcTL":
                #expect(PNGChunks.u32(data, 0) == sequence); sequence += 1
                #expect(PNGChunks.u32(data, 4) == 7 && PNGChunks.u32(data, 8) == 5)
                #expect(Array(data[20..<24]) == [0, 250, 0x03, 0xE8], "250/1000 s")
                frames.append([])
            case "IDAT":
                #expect(frames.count == 1, "only the first frame is IDAT")
                frames[frames.count - 1] += data
            case "fdAT":
                #expect(PNGChunks.u32(data, 0) == sequence); sequence += 1
                frames[frames.count - 1] += data[4...]
            default: break
            }
        }
        #expect(frames.count == 3)
        for (i, data) in frames.enumerated() {
            let image = try PNG.decode(Self.still(header: header, data: data))
            #expect(image.pixels == sources[i], "frame \(i)")
        }
        // The whole file is still a valid PNG whose default image is the first frame.
        #expect(try PNG.decode(apng).pixels == sources[0])
    }

    @Test("frames of another size, non-PNG files and an empty list are refused with the file's name")
    func refusesBadFrames() throws {
        let a = PNG.encode(width: 7, height: 5, channels: 1, pixels: Self.frame(0))
        let b = PNG.encode(width: 5, height: 7, channels: 1, pixels: Self.frame(1, width: 5, height: 7))
        #expect(throws: AnimatedPNGError.frameMismatch(path: "b.png", reason: "its size or colour type differs from a.png")) {
            try AnimatedPNG.join([("a.png", a), ("b.png", b)], delayMilliseconds: 100)
        }
        #expect(throws: AnimatedPNGError.notPNG(path: "x.png", reason: "no PNG signature")) {
            try AnimatedPNG.join([("a.png", a), ("x.png", Array("not a png".utf8))], delayMilliseconds: 100)
        }
        var corrupt = a
        corrupt[corrupt.count / 2] ^= 0xFF
        #expect(throws: AnimatedPNGError.self) { try AnimatedPNG.join([("c.png", corrupt)], delayMilliseconds: 100) }
        #expect(throws: AnimatedPNGError.noFrames) { try AnimatedPNG.join([], delayMilliseconds: 100) }
    }
}
