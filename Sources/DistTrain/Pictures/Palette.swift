import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// Ten distinct colours, one per label (label k gets colour k).
public enum Palette {
    public static let rgb: [(UInt8, UInt8, UInt8)] = [
        (0x1B, 0x6A, 0xC9), (0xF0, 0x7F, 0x13), (0x2E, 0x9E, 0x3A), (0xD4, 0x2A, 0x2A), (0x8A, 0x4F, 0xC4),
        (0x8C, 0x5A, 0x3C), (0xE0, 0x66, 0xB3), (0x6B, 0x6B, 0x6B), (0xB5, 0xB5, 0x12), (0x13, 0xB5, 0xC9),
    ]

    /// Colour of label `k` (wrapping after ten).
    public static func color(_ k: Int) -> (UInt8, UInt8, UInt8) { rgb[((k % rgb.count) + rgb.count) % rgb.count] }

    /// `#rrggbb` of label `k`.
    public static func hex(_ k: Int) -> String {
        let (r, g, b) = color(k)
        return "#" + [r, g, b].map { v in
            let s = String(v, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }
}
