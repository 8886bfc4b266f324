import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// An RGB canvas, white to start with.
struct Raster {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func blend(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8), alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        for (k, v) in [c.0, c.1, c.2].enumerated() {
            let old = Double(pixels[i + k])
            pixels[i + k] = UInt8((old + (Double(v) - old) * alpha).rounded())
        }
    }

    mutating func fill(x: Int, y: Int, w: Int, h: Int, _ c: (UInt8, UInt8, UInt8)) {
        for yy in y..<(y + max(h, 0)) { for xx in x..<(x + max(w, 0)) { blend(xx, yy, c, alpha: 1) } }
    }

    /// A filled disc: pixels whose centres lie within `radius` of (cx, cy).
    mutating func disc(cx: Double, cy: Double, radius: Double, _ c: (UInt8, UInt8, UInt8), alpha: Double) {
        // Only the part on the canvas is drawn (a huge or non-finite centre draws nothing).
        guard cx.isFinite, cy.isFinite, radius.isFinite, radius >= 0,
              cx + radius >= 0, cy + radius >= 0, cx - radius < Double(width), cy - radius < Double(height) else { return }
        let r2 = radius * radius
        for y in Int(floor(cy - radius))...Int(ceil(cy + radius)) {
            for x in Int(floor(cx - radius))...Int(ceil(cx + radius)) {
                let dx = Double(x) + 0.5 - cx, dy = Double(y) + 0.5 - cy
                if dx * dx + dy * dy <= r2 { blend(x, y, c, alpha: alpha) }
            }
        }
    }

    mutating func text(_ s: String, x: Int, y: Int, scale: Int, _ c: (UInt8, UInt8, UInt8)) {
        var cursor = x
        for ch in s {
            if let rows = BitmapFont.glyphs[ch] {
                for (gy, row) in rows.enumerated() {
                    for (gx, bit) in row.enumerated() where bit == "#" {
                        fill(x: cursor + gx * scale, y: y + gy * scale, w: scale, h: scale, c)
                    }
                }
            }
            cursor += BitmapFont.advance * scale
        }
    }
}
