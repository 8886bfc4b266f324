import Models

/// The test-set terms of a VQ-VAE: deterministic (no noise), in float64 per record.
/// `sums.bce` is the reconstruction term (BCE or squared error, whichever the model uses),
/// `sums.kl` the codebook + commitment loss (1 + commitment) |z_e - z_q|^2, `sums.nllIW` 0 (a
/// VQ-VAE without a prior has no likelihood); `counts` [K] the positions that chose each code.
public struct QuantizedEvaluation {
    public var sums = EvaluationSums()
    public var counts: [Double]

    /// Evaluates every record of `shard` in batches of `batch`.
    public static func run(model: VAE, params: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>?,
                           shard: DatasetShard, batch: Int = 250, binarize: UInt64? = nil) -> QuantizedEvaluation {
        let a = model.architecture
        precondition(a.latentKind == .vectorQuantized, "QuantizedEvaluation needs a vector-quantized latent")
        let ws = VAEWorkspace(model: model, capacity: max(1, min(batch, shard.count)))
        ws.resetCodeCounts()
        var result = QuantizedEvaluation(counts: [])
        var start = 0
        while start < shard.count {
            let rows = min(ws.capacity, shard.count - start)
            for r in 0..<rows { shard.fill(ws, row: r, local: start + r, architecture: a, binarize: binarize) }
            model.encode(params, ws, rows: rows, state: state)
            result.sums.kl += model.quantize(params, ws, rows: rows, counts: ws.codeCounts, state: state)
            model.decode(params, ws, rows: rows, state: state)
            for r in 0..<rows {
                let logits = ws.logits.base + r * a.inputDim, targets = ws.encoderInput.base + r * a.encoderInputWidth
                result.sums.bce += a.reconstruction == .mse ? Evaluation.squaredError64(logits: logits, targets: targets, count: a.inputDim)
                                                            : Evaluation.bce64(logits: logits, targets: targets, count: a.inputDim)
            }
            result.sums.count += rows
            start += rows
        }
        result.counts = Array(UnsafeBufferPointer(start: ws.codeCounts, count: ws.codebookSize))
        return result
    }

    /// Perplexity and codes used of these counts (sum them across ranks first).
    public var usage: CodebookUsage { CodebookUsage(counts: counts) }
}
