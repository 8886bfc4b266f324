/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1], from the logits:
/// bce = max(l, 0) - l x + log(1 + e^-|l|), the same value as -x log p - (1-x) log(1-p) with no
/// log(0) for saturated pixels. Its gradient with respect to l is sigmoid(l) - x.
public enum BinaryCrossEntropy {
    /// Per-row BCE sums; when `gradientScale` is given, logits are overwritten in place by
    /// gradientScale * (sigmoid(l) - x), fusing loss and gradient into one pass.
    /// `targets` rows are `targetStride` floats apart (the encoder input holds the pixels).
    /// With `rowLoss`, rows are split over the WorkerPool and the total is summed from
    /// `rowLoss` in row order afterwards: the same float64 sum as the single-threaded loop.
    public static func evaluate(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>, targetStride: Int,
                                rows: Int, width: Int, gradientScale: Float?, rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        guard let rowLoss else {
            return evaluateRows(0..<rows, logits: logits, targets: targets, targetStride: targetStride, width: width,
                                gradientScale: gradientScale, rowLoss: nil)
        }
        var pass = LossPass(logits: logits, targets: targets, targetStride: targetStride, rows: rows, width: width,
                            gradientScale: gradientScale, rowLoss: rowLoss)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: Activation.rowsPerChunk(width: width)), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: LossPass.self).pointee
            _ = BinaryCrossEntropy.evaluateRows(WorkerPool.range(chunk, count: p.rows, size: Activation.rowsPerChunk(width: p.width)),
                                logits: p.logits, targets: p.targets, targetStride: p.targetStride, width: p.width,
                                gradientScale: p.gradientScale, rowLoss: p.rowLoss)
        }
        var total = 0.0
        for r in 0..<rows { total += Double(rowLoss[r]) }
        return total
    }

    /// The arguments of `evaluate`'s row chunks (BCE and squared error), for the WorkerPool.
    struct LossPass {
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
                let lv = FastMath.load(l + j)
                let xv = FastMath.load(x + j)
                let (loss, grad) = element(lv, xv)
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

    @inline(__always)
    static func element(_ l: FastMath.V, _ x: FastMath.V) -> (loss: FastMath.V, grad: FastMath.V) {
        let zero = FastMath.V(repeating: 0)
        let negAbs = l.replacing(with: -l, where: l .> zero)
        let e = FastMath.expNonPositive(negAbs)                  // e^-|l| in (0, 1]
        let loss = l.replacing(with: zero, where: l .< zero) - l * x + FastMath.log1pUnit(e)
        let r = 1 / (1 + e)
        let sigmoid = (e * r).replacing(with: r, where: l .>= zero)
        return (loss, sigmoid - x)
    }

    /// sigmoid(logits) into `out` (for images).
    public static func sigmoid(_ logits: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = 1 / (1 + expf(-logits[i])) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
