import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Layout of a reconstruction grid: `cols` images per row, rows in pairs (originals, then
/// their reconstructions right below).
public enum ReconstructionGrid {
    /// Columns used for `count` images when at most `maxCols` fit in a row.
    public static func columns(count: Int, maxCols: Int = 10) -> Int { max(1, min(count, maxCols)) }

    /// Rows after which a grey line separates one original/reconstruction pair from the next.
    public static func separators(rows: Int) -> [Int] { Array(stride(from: 1, to: rows - 1, by: 2)) }

    /// The grid's cells and shape for originals and reconstructions of `count` images
    /// (`inputDim` floats each): rows alternate originals / reconstructions, `cols` per row;
    /// cells past `count` stay black.
    public static func cells(originals: [Float], reconstructions: [Float], count: Int, inputDim: Int,
                             cols: Int) -> (cells: [Float], rows: Int) {
        let pairRows = (count + cols - 1) / cols
        var cells = [Float](repeating: 0, count: 2 * pairRows * cols * inputDim)
        for i in 0..<count {
            let r = i / cols, c = i % cols
            let top = ((2 * r) * cols + c) * inputDim
            let bottom = ((2 * r + 1) * cols + c) * inputDim
            for p in 0..<inputDim {
                cells[top + p] = originals[i * inputDim + p]
                cells[bottom + p] = reconstructions[i * inputDim + p]
            }
        }
        return (cells, 2 * pairRows)
    }
}

/// Writes a PNG of the first `count` records of `shard` and their reconstructions (posterior
/// mean decoded with the record's own label): up to 10 images per row, each row of originals
/// followed by the row of their reconstructions, a grey line between such pairs of rows. The trainer can call it once per epoch on a
/// fixed set of test images (it allocates its own workspace; nothing in the step loop).
public func writeReconstructionGrid(model: VAE, params: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>? = nil,
                                    shard: DatasetShard, count: Int, to path: String) throws {
    let n = min(count, shard.count)
    let runner = ModelRunner(model: model, params: params, state: state)
    let locals = Array(0..<n)
    let originals = locals.flatMap { ModelRunner.pixels(shard, local: $0) }
    let recon = try runner.reconstruct(shard, locals: locals)
    let cols = ReconstructionGrid.columns(count: n)
    let (cells, rows) = ReconstructionGrid.cells(originals: originals, reconstructions: recon, count: n,
                                                 inputDim: shard.inputDim, cols: cols)
    try ImageGrid(rows: rows, cols: cols, cellHeight: shard.rows, cellWidth: shard.cols)
        .writePNG(cells, separatorsAfterRows: ReconstructionGrid.separators(rows: rows), to: path)
}

// MARK: - Test-set likelihood
