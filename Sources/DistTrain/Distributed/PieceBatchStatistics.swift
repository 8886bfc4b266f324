import Models

/// BatchNorm in deterministic mode: each piece (virtual shard's share of the batch) is
/// normalized with its own statistics, like ghost batch norm, so no statistic depends on how
/// pieces are spread over ranks. The running statistics must still be the same on every rank
/// and at every world size: each piece's forward sums are recorded into its slot of
/// `PieceSums`, shared after the step, and every rank applies the 24 pieces' updates in piece
/// order (`applyRunningUpdates`), exactly what one rank running the pieces one after another
/// would do.
final class PieceBatchStatistics: BatchStatisticsReducer {
    /// BatchNorm layers in the order their forward passes run (encoder, then decoder).
    let layers: [BatchNorm]
    /// The slot of the piece being run: set by the trainer before each piece.
    var piece = 0
    /// Next free value in the current piece's slot.
    var cursor = 0
    /// Values per piece: (2C + 1) per layer.
    let width: Int
    /// Where the slots live (shared with the loss sums); values start at `offset` in each slot.
    unowned let sums: PieceSums
    let offset: Int

    init(layers: [BatchNorm], sums: PieceSums, offset: Int) {
        self.layers = layers
        self.sums = sums
        self.offset = offset
        width = PieceBatchStatistics.width(layers)
    }

    static func width(_ layers: [BatchNorm]) -> Int { layers.reduce(0) { $0 + 2 * $1.channels + 1 } }

    var recordsPieceStatistics: Bool { true }

    /// Starts recording piece v.
    func begin(piece v: Int) {
        piece = v
        cursor = 0
    }

    func record(_ values: UnsafePointer<Double>, count: Int) {
        precondition(cursor + count <= width, "more BatchNorm statistics than layers")
        (sums.slot(piece) + offset + cursor).update(from: values, count: count)
        cursor += count
    }

    /// Never called in deterministic mode (BatchNorm records instead of summing).
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {}

    /// Every piece's running-statistics update, in piece order (after `sums.share()`).
    func applyRunningUpdates(_ state: UnsafeMutablePointer<Float>) {
        for v in 0..<VirtualShards.count {
            var at = sums.slot(v) + offset
            for layer in layers {
                layer.updateRunningStatistics(state, sums: at)
                at += 2 * layer.channels + 1
            }
        }
    }
}
