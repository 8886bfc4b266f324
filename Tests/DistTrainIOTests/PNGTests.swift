import Foundation
import Testing
@testable import DistTrainIO
import IOTestSupport

@Suite struct PNGTests {
    /// A gradient with a little texture so every filter type gets chosen somewhere.
    static func pattern(width: Int, height: Int, channels: Int) -> [UInt8] {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let texture = (x * 31 + y * 17 + c * 7) % 13 == 0 ? 40 : 0
                    pixels.append(UInt8((x * 255 / max(width - 1, 1) + y * 3 + c * 50 + texture) & 0xFF))
                }
            }
        }
        return pixels
    }

    /// The chunk types of an encoded PNG, in order.
    static func chunkTypes(_ png: [UInt8]) -> [String] {
        var types: [String] = []
        var pos = 8
        while pos + 8 <= png.count {
            let length = Int(png[pos]) << 24 | Int(png[pos + 1]) << 16 | Int(png[pos + 2]) << 8 | Int(png[pos + 3])
            types.append(String(decoding: png[pos + 4..<pos + 8], as: UTF8.self))
            pos += 12 + length
        }
        return types
    }

    @Test(arguments: [1, 3])
    func roundTrip(channels: Int) throws {
        let (width, height) = (37, 23)
        let pixels = Self.pattern(width: width, height: height, channels: channels)
        let png = PNG.encode(width: width, height: height, channels: channels, pixels: pixels)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Self.chunkTypes(png) == ["IHDR", "IDAT", "IEND"])
        #expect(try PNG.decode(png) == PNGImage(width: width, height: height, channels: channels, pixels: pixels))
    }

    @Test(arguments: [UInt8(0), 1, 2, 3, 4])
    func everyFilterType(filter: UInt8) throws {
        for channels in [1, 3] {
            let pixels = Self.pattern(width: 19, height: 7, channels: channels)
            let png = PNG.encode(width: 19, height: 7, channels: channels, pixels: pixels, filter: filter, idatSize: 1 << 20)
            #expect(try PNG.decode(png).pixels == pixels)
        }
    }

    @Test func tinyAndMultipleIDAT() throws {
        #expect(try PNG.decode(PNG.encode(width: 1, height: 1, channels: 1, pixels: [200])).pixels == [200])
        let pixels = Self.pattern(width: 64, height: 40, channels: 3)
        let png = PNG.encode(width: 64, height: 40, channels: 3, pixels: pixels, filter: nil, idatSize: 50)
        #expect(Self.chunkTypes(png).filter { $0 == "IDAT" }.count > 3)
        #expect(try PNG.decode(png).pixels == pixels)
    }

    @Test func crcCorruptionDetected() throws {
        let png = PNG.encode(width: 8, height: 8, channels: 1, pixels: Self.pattern(width: 8, height: 8, channels: 1))
        var header = png
        header[16] ^= 0x01  // width's low byte in IHDR
        #expect(throws: PNGError.badCRC(chunk: "IHDR", offset: 8)) { try PNG.decode(header) }
        var data = png
        data[8 + 25 + 10] ^= 0x40  // inside IDAT's data
        #expect(throws: PNGError.badCRC(chunk: "IDAT", offset: 33)) { try PNG.decode(data) }
        var crc = png
        crc[crc.count - 1] ^= 0xFF  // IEND's CRC
        #expect(throws: PNGError.badCRC(chunk: "IEND", offset: png.count - 12)) { try PNG.decode(crc) }
    }

    @Test func malformedInput() throws {
        let png = PNG.encode(width: 8, height: 8, channels: 3, pixels: Self.pattern(width: 8, height: 8, channels: 3))
        #expect(throws: PNGError.notPNG) { try PNG.decode([1, 2, 3]) }
        #expect(throws: PNGError.notPNG) { try PNG.decode(Array("GIF89a..".utf8)) }
        for cut in [10, 40, png.count - 12, png.count - 1] {
            let error = #expect(throws: PNGError.self) { try PNG.decode(Array(png.prefix(cut))) }
            guard case .truncated? = error else {
                Issue.record("cut at \(cut): expected truncated, got \(String(describing: error))")
                continue
            }
        }
        let badFilter = PNG.encode(width: 4, height: 2, channels: 1, pixels: [UInt8](repeating: 9, count: 8),
                                   filter: 7, idatSize: 1 << 20)
        #expect(throws: PNGError.badFilter(row: 0, type: 7)) { try PNG.decode(badFilter) }
    }

    @Test func fileRoundTripAndErrorNamesPath() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("grid.png")
        let pixels = Self.pattern(width: 30, height: 20, channels: 3)
        try PNG.write(path: path, width: 30, height: 20, channels: 3, pixels: pixels)
        #expect(try PNG.read(path: path) == PNGImage(width: 30, height: 20, channels: 3, pixels: pixels))
        let bad = dir.file("bad.png")
        #expect(throws: PNGError.inFile(path: bad, .invalidImage("2x2x3 needs 12 bytes, got 11"))) {
            try PNG.write(path: bad, width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 0, count: 11))
        }
        #expect(throws: PNGError.inFile(path: bad, .invalidImage("channels must be 1 or 3, got 4"))) {
            try PNG.write(path: bad, width: 2, height: 2, channels: 4, pixels: [UInt8](repeating: 0, count: 16))
        }
        #expect(try dir.listing() == ["grid.png"])
        try IOTestFiles.write([0, 1, 2], to: path)
        let error = #expect(throws: PNGError.self) { try PNG.read(path: path) }
        #expect(error?.description == "\(path): not a PNG file (signature missing)")
    }

    /// An independent decoder (python3 with only zlib and struct) reads what we write.
    @Test(.enabled(if: IOTestFiles.hasPython))
    func pythonReadsIt() throws {
        let dir = try IOTestDirectory()
        for channels in [1, 3] {
            let path = dir.file("image\(channels).png")
            let pixels = Self.pattern(width: 33, height: 17, channels: channels)
            try PNG.write(path: path, width: 33, height: 17, channels: channels, pixels: pixels)
            let script = """
            import struct, sys, zlib
            data = open(sys.argv[1], 'rb').read()
            assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
            pos, idat = 8, b''
            while True:
                n, kind = struct.unpack('>I4s', data[pos:pos + 8])
                body = data[pos + 8:pos + 8 + n]
                assert struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body), kind
                if kind == b'IHDR': w, h, depth, color = struct.unpack('>IIBB', body[:10])
                if kind == b'IDAT': idat += body
                pos += 12 + n
                if kind == b'IEND': break
            bpp = {0: 1, 2: 3}[color]
            raw, stride, out = zlib.decompress(idat), w * bpp, []
            prev = [0] * stride
            for y in range(h):
                f, line, cur = raw[y * (stride + 1)], raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], []
                for x in range(stride):
                    a = cur[x - bpp] if x >= bpp else 0
                    b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = [0, a, b, (a + b) // 2, a if pa <= pb and pa <= pc else (b if pb <= pc else c)][f]
                    cur.append((line[x] + pred) & 255)
                out += cur
                prev = cur
            print(w, h, depth, color, sum(out), len(out))
            """
            let result = try #require(IOTestFiles.run("python3", ["-c", script, path]))
            #expect(result.status == 0, "\(result.output)")
            let expected = "33 17 8 \(channels == 1 ? 0 : 2) \(pixels.reduce(0) { $0 + Int($1) }) \(pixels.count)"
            #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
        }
    }

    @Test(.enabled(if: IOTestFiles.run("file", ["--version"])?.status == 0))
    func fileCommandRecognisesIt() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("gray.png")
        try PNG.write(path: path, width: 12, height: 5, channels: 1, pixels: Self.pattern(width: 12, height: 5, channels: 1))
        let output = try #require(IOTestFiles.run("file", ["-b", path])).output
        #expect(output.hasPrefix("PNG image data, 12 x 5, 8-bit grayscale, non-interlaced"), "\(output)")
    }
}
