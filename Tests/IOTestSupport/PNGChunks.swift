/// Reads a PNG file's chunk list, independently of the code under test (lengths only; the
/// decoder checks CRCs): for tests of animated PNGs, whose extra chunks the decoder skips.
public enum PNGChunks {
    /// (type, data) of every chunk after the signature.
    public static func of(_ png: [UInt8]) -> [(type: String, data: [UInt8])] {
        var out: [(type: String, data: [UInt8])] = []
        var pos = 8
        while pos + 12 <= png.count {
            let n = Int(png[pos]) << 24 | Int(png[pos + 1]) << 16 | Int(png[pos + 2]) << 8 | Int(png[pos + 3])
            guard pos + 12 + n <= png.count else { break }
            out.append((String(decoding: png[(pos + 4)..<(pos + 8)], as: UTF8.self), Array(png[(pos + 8)..<(pos + 8 + n)])))
            pos += 12 + n
        }
        return out
    }

    /// The big-endian 32-bit number at `i`.
    public static func u32(_ b: [UInt8], _ i: Int) -> Int {
        Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }
}
