/// Squared error of sigmoid(logits) against targets in [0, 1], summed per row: seed 003's
/// ConvVAE objective (nn.Sigmoid at the decoder's end, MSE summed over pixels). The sigmoid is
/// applied here so the decoder outputs logits like every other model. Gradient with respect to
/// the logit l: 2 (s - x) s (1 - s), s = sigmoid(l).
public enum SquaredError {
    /// Per-row sums into `rowLoss`; with `gradientScale`, logits are overwritten in place by
    /// gradientScale * dloss/dlogit. `targets` rows are `targetStride` floats apart.
    /// With `rowLoss`, rows are split over the WorkerPool and the total is summed from
    /// `rowLoss` in row order afterwards: the same float64 sum as the single-threaded loop.
    public static func evaluate(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>, targetStride: Int,
                                rows: Int, width: Int, gradientScale: Float?, rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        guard let rowLoss else {
            return evaluateRows(0..<rows, logits: logits, targets: targets, targetStride: targetStride, width: width,
                                gradientScale: gradientScale, rowLoss: nil)
        }
        var pass = BinaryCrossEntropy.LossPass(logits: logits, targets: targets, targetStride: targetStride, rows: rows, width: width,
                            gradientScale: gradientScale, rowLoss: rowLoss)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: Activation.rowsPerChunk(width: width)), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: BinaryCrossEntropy.LossPass.self).pointee
            _ = SquaredError.evaluateRows(WorkerPool.range(chunk, count: p.rows, size: Activation.rowsPerChunk(width: p.width)),
                                logits: p.logits, targets: p.targets, targetStride: p.targetStride, width: p.width,
                                gradientScale: p.gradientScale, rowLoss: p.rowLoss)
        }
        var total = 0.0
        for r in 0..<rows { total += Double(rowLoss[r]) }
        return total
    }

    /// The rows `range` of `evaluate`, on the calling thread; returns their float64 sum.
    @inline(__always)
    static func evaluateRows(_ range: Range<Int>, logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>,
                             targetStride: Int, width: Int, gradientScale: Float?,
                             rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        typealias V = FastMath.V
        var total = 0.0
        let vectorWidth = width / 8 * 8
        for r in range {
            let l = logits + r * width
            let x = targets + r * targetStride
            var acc = V(repeating: 0)
            var j = 0
            while j < vectorWidth {
                let (loss, grad) = element(FastMath.load(l + j), FastMath.load(x + j))
                acc += loss
                if let s = gradientScale { FastMath.store(grad * s, l + j) }
                j += 8
            }
            if j < width {
                var lt = V(repeating: 0), xt = V(repeating: 0)
                for k in 0..<(width - j) { lt[k] = l[j + k]; xt[k] = x[j + k] }
                let (loss, grad) = element(lt, xt)
                for k in 0..<(width - j) {
                    acc[k] += loss[k]
                    if let s = gradientScale { l[j + k] = grad[k] * s }
                }
            }
            let rowSum = acc.sum()
            rowLoss?[r] = rowSum
            total += Double(rowSum)
        }
        return total
    }

    @inline(__always)
    static func element(_ l: FastMath.V, _ x: FastMath.V) -> (loss: FastMath.V, grad: FastMath.V) {
        let s = Sigmoid.sigmoid(l)
        let d = s - x
        return (d * d, 2 * d * s * (1 - s))
    }
}
