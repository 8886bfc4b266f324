import Models

/// What deterministic mode (`runtime.deterministic`) adds to a training run: this rank's
/// pieces (virtual shards) and their rows of every batch, one gradient buffer per piece with
/// their exact sum (`ExactGradientSum`), the per-piece slots that make the loss sums, the
/// BatchNorm statistics and the test-loss sums exact (`PieceSums`), and BatchNorm's
/// per-piece statistics (`PieceBatchStatistics`, nil without BatchNorm).
///
/// The step runs each piece as its own micro-batch (forward and backward over exactly its
/// rows: OpenBLAS 0.3.21 gives other bits for the same row in products of a different row
/// count; the pool's products are cut by shape, so any thread count gives the same bits), so a
/// piece's gradient is the same bits on any rank of any world size.
struct PieceReduction {
    let shards: VirtualShards
    /// This rank's pieces, in order.
    let pieces: Range<Int>
    /// Rows of each local piece (index i is piece pieces.lowerBound + i).
    let rows: [Int]
    let gradients: ExactGradientSum
    /// Per piece: [bce, kl] of the step, then the BatchNorm forward sums; extra: the stop count.
    let stepSums: PieceSums
    /// Per piece: [bce, kl, rows] of the test set.
    let testSums: PieceSums
    let statistics: PieceBatchStatistics?

    /// Values of a piece's step slot before its BatchNorm sums.
    static let lossWidth = 2

    init(shards: VirtualShards, rank: Int, model: VAE, comm: Communicator, counter: GradientReducer) {
        self.shards = shards
        pieces = shards.pieces(rank: rank)
        rows = pieces.map(shards.pieceRows)
        gradients = ExactGradientSum(comm: comm, layout: model.layout, pieces: pieces.count, counter: counter)
        let norms = model.layers.compactMap { $0 as? BatchNorm }
        let width = PieceReduction.lossWidth + PieceBatchStatistics.width(norms)
        stepSums = PieceSums(comm: comm, width: width, extra: 1, counter: counter)
        testSums = PieceSums(comm: comm, width: 3)
        statistics = norms.isEmpty ? nil : PieceBatchStatistics(layers: norms, sums: stepSums, offset: PieceReduction.lossWidth)
    }
}
