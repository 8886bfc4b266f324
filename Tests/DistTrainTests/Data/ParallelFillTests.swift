import DistTrain
import Models
import Testing

/// The pooled batch fill writes exactly what the row-by-row fill writes, on any thread count.
struct ParallelFillTests {
    /// Everything a fill writes: encoder and decoder inputs, ids and labels, as bit patterns.
    func contents(_ ws: VAEWorkspace, rows: Int, _ a: VAEArchitecture) -> [UInt32] {
        (0..<rows * a.encoderInputWidth).map { ws.encoderInput.base[$0].bitPattern }
            + (0..<rows * a.decoderInputWidth).map { ws.decoderInput.base[$0].bitPattern }
            + (0..<rows).flatMap { [UInt32(bitPattern: ws.ids[$0]), UInt32(bitPattern: ws.labels[$0])] }
    }

    @Test("pooled fill == row-by-row fill, by order and consecutive, binarized or not, on 1, 2 and 3 threads",
          arguments: [nil, UInt64(0x1234_5678)])
    func sameAsRowByRow(binarize: UInt64?) throws {
        defer { RankThreads.set(1) }
        let shard = try DatasetShard.load(images: Support.smallData + "/t10k-images", labels: Support.smallData + "/t10k-labels",
                                          classes: 10) { 0..<$0 }
        let a = TrainConfig().architecture(inputDim: shard.inputDim)
        let rows = min(shard.count, 77)  // two full parts of 32 and a short one
        let order = (0..<rows).map { Int32((rows - 1 - $0) * 7 % shard.count) }
        let expected = VAEWorkspace(architecture: a, capacity: rows)
        let consecutive = VAEWorkspace(architecture: a, capacity: rows)
        for r in 0..<rows {
            shard.fill(expected, row: r, local: Int(order[r]), architecture: a, binarize: binarize)
            shard.fill(consecutive, row: r, local: 3 + r, architecture: a, binarize: binarize)
        }
        for threads in [1, 2, 3] {
            RankThreads.set(threads)
            let ws = VAEWorkspace(architecture: a, capacity: rows)
            order.withUnsafeBufferPointer { shard.fill(ws, rows: rows, locals: $0.baseAddress!, architecture: a, binarize: binarize) }
            #expect(contents(ws, rows: rows, a) == contents(expected, rows: rows, a), "\(threads) threads, by order")
            let seq = VAEWorkspace(architecture: a, capacity: rows)
            shard.fill(seq, rows: rows, locals: nil, firstLocal: 3, architecture: a, binarize: binarize)
            #expect(contents(seq, rows: rows, a) == contents(consecutive, rows: rows, a), "\(threads) threads, consecutive")
        }
    }
}
