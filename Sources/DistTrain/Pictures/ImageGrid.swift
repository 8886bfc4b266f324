import DistTrainIO
import Models

/// Tiles 28x28 (or any size) float images in [0, 1] into one 8-bit grayscale picture:
/// white digits on black, `padding` black pixels around and between cells.
public struct ImageGrid {
    public let rows: Int
    public let cols: Int
    public let cellHeight: Int
    public let cellWidth: Int
    public let padding: Int

    public init(rows: Int, cols: Int, cellHeight: Int = 28, cellWidth: Int = 28, padding: Int = 2) {
        self.rows = rows; self.cols = cols
        self.cellHeight = cellHeight; self.cellWidth = cellWidth
        self.padding = padding
    }

    public var width: Int { cols * cellWidth + (cols + 1) * padding }
    public var height: Int { rows * cellHeight + (rows + 1) * padding }

    /// `cells` holds rows*cols images row-major (cell (r, c) at index r*cols + c), each
    /// cellHeight*cellWidth floats.
    public func render(_ cells: [Float]) -> [UInt8] {
        let cell = cellHeight * cellWidth
        precondition(cells.count == rows * cols * cell)
        var out = [UInt8](repeating: 0, count: width * height)
        for r in 0..<rows {
            for c in 0..<cols {
                let src = (r * cols + c) * cell
                let top = padding + r * (cellHeight + padding)
                let left = padding + c * (cellWidth + padding)
                for y in 0..<cellHeight {
                    for x in 0..<cellWidth {
                        let v = min(max(cells[src + y * cellWidth + x], 0), 1)
                        out[(top + y) * width + left + x] = UInt8((v * 255).rounded())
                    }
                }
            }
        }
        return out
    }

    /// Renders and writes a PNG atomically.
    public func writePNG(_ cells: [Float], to path: String) throws {
        try AtomicFile.write(PNG.encode(width: width, height: height, channels: 1, pixels: render(cells)), to: path)
    }
}
