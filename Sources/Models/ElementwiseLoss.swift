/// The row loop shared by the reconstruction losses (BinaryCrossEntropy, SquaredError). Each
/// is a sum over a row's pixels of an 8-lane function of (logit, target) that also gives the
/// gradient with respect to the logit; one loop serves both, so the vector body, the padded
/// tail, the WorkerPool split and the row-order float64 sum cannot drift apart between them.
///
/// Dimensions: rows = samples, width = pixels per sample (the loss's columns), targetStride =
/// floats between two target rows (the encoder input row, which may hold more than the pixels).
public enum ElementwiseLoss {
    /// One loss's lane function: (logits, targets) -> (loss, dloss/dlogit), 8 lanes each.
    typealias Element = (FastMath.V, FastMath.V) -> (loss: FastMath.V, grad: FastMath.V)

    /// Per-row sums of `reconstruction`; when `gradientScale` is given, logits are overwritten in
    /// place by gradientScale * dloss/dlogit, fusing loss and gradient into one pass.
    /// With `rowLoss`, rows are split over the WorkerPool and the total is summed from
    /// `rowLoss` in row order afterwards: the same float64 sum as the single-threaded loop.
    /// logits [rows, width] (in place), targets [rows, targetStride] (first `width` read), rowLoss [rows].
    public static func evaluate(_ reconstruction: Reconstruction, logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>,
                         targetStride: Int, rows: Int, width: Int, gradientScale: Float?,
                         rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        guard let rowLoss else {
            return evaluateRows(reconstruction, 0..<rows, logits: logits, targets: targets, targetStride: targetStride,
                                width: width, gradientScale: gradientScale, rowLoss: nil)
        }
        var pass = LossPass(reconstruction: reconstruction, logits: logits, targets: targets, targetStride: targetStride,
                            rows: rows, width: width, gradientScale: gradientScale, rowLoss: rowLoss)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: Activation.rowsPerChunk(width: width)), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: LossPass.self).pointee
            _ = ElementwiseLoss.evaluateRows(p.reconstruction,
                                             WorkerPool.range(chunk, count: p.rows, size: Activation.rowsPerChunk(width: p.width)),
                                             logits: p.logits, targets: p.targets, targetStride: p.targetStride, width: p.width,
                                             gradientScale: p.gradientScale, rowLoss: p.rowLoss)
        }
        var total = 0.0
        for r in 0..<rows { total += Double(rowLoss[r]) }
        return total
    }

    /// The arguments of `evaluate`'s row chunks, for the WorkerPool (whose kernel is a C function
    /// pointer and so cannot be generic over the loss: the loss travels as `reconstruction`).
    struct LossPass {
        var reconstruction: Reconstruction
        var logits: UnsafeMutablePointer<Float>
        var targets: UnsafePointer<Float>
        var targetStride: Int
        var rows: Int
        var width: Int
        var gradientScale: Float?
        var rowLoss: UnsafeMutablePointer<Float>
    }

    /// The rows `range` of `evaluate`, on the calling thread; returns their float64 sum.
    @inline(__always)
    static func evaluateRows(_ reconstruction: Reconstruction, _ range: Range<Int>, logits: UnsafeMutablePointer<Float>,
                             targets: UnsafePointer<Float>, targetStride: Int, width: Int, gradientScale: Float?,
                             rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        switch reconstruction {
        case .bce:
            return evaluateRows(range, logits: logits, targets: targets, targetStride: targetStride, width: width,
                                gradientScale: gradientScale, rowLoss: rowLoss, BinaryCrossEntropy.element)
        case .mse:
            return evaluateRows(range, logits: logits, targets: targets, targetStride: targetStride, width: width,
                                gradientScale: gradientScale, rowLoss: rowLoss, SquaredError.element)
        }
    }

    /// The loop itself for one lane function (inlined per loss, so each gets its own vector loop).
    @inline(__always)
    static func evaluateRows(_ range: Range<Int>, logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>,
                             targetStride: Int, width: Int, gradientScale: Float?,
                             rowLoss: UnsafeMutablePointer<Float>?, _ element: Element) -> Double {
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
                // Tail: pad to one vector, mask the padding's loss out.
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
}
