import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

// Grids with separator lines (originals above re-drawings). The plots themselves are
// LearningCurves and LatentScatter, drawn by hand: no plotting library is involved.

// MARK: - Shared pieces

extension ImageGrid {
    /// Renders like `render(_:)`, then paints the padding strip below each row in
    /// `separatorsAfterRows` and right of each column in `separatorsAfterColumns` mid-grey, so
    /// a header row (originals above re-drawings), a header column (the original before its
    /// re-drawings) or groups of rows (original/reconstruction pairs) stand apart.
    public func render(_ cells: [Float], separatorsAfterRows: [Int], separatorsAfterColumns: [Int] = []) -> [UInt8] {
        var out = render(cells)
        let grey: UInt8 = 150
        for r in separatorsAfterRows where r >= 0 && r < rows - 1 {
            let y0 = (r + 1) * (cellHeight + padding)
            for y in y0..<(y0 + padding) { for x in 0..<width { out[y * width + x] = grey } }
        }
        for c in separatorsAfterColumns where c >= 0 && c < cols - 1 {
            let x0 = (c + 1) * (cellWidth + padding)
            for y in 0..<height { for x in x0..<(x0 + padding) { out[y * width + x] = grey } }
        }
        return out
    }

    /// `render(_:separatorsAfterRows:separatorsAfterColumns:)` written atomically as a grayscale PNG.
    public func writePNG(_ cells: [Float], separatorsAfterRows: [Int], separatorsAfterColumns: [Int] = [], to path: String) throws {
        let pixels = render(cells, separatorsAfterRows: separatorsAfterRows, separatorsAfterColumns: separatorsAfterColumns)
        try AtomicFile.write(PNG.encode(width: width, height: height, channels: 1, pixels: pixels), to: path)
    }
}
