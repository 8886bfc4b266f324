/// Sums of a batch's loss terms (float64, so epoch totals do not drift).
public struct BatchLoss: Equatable, Sendable {
    /// Sum over rows of the per-sample reconstruction BCE.
    public var bce: Double = 0
    /// Sum over rows of the per-sample KL(q(z|x) || N(0, I)) (unweighted by beta).
    public var kl: Double = 0
    /// Number of samples summed.
    public var rows: Int = 0

    public init(bce: Double = 0, kl: Double = 0, rows: Int = 0) {
        self.bce = bce; self.kl = kl; self.rows = rows
    }

    /// The objective the trainer minimizes, summed: bce + beta * kl.
    public func total(beta: Double) -> Double { bce + beta * kl }

    public static func += (a: inout BatchLoss, b: BatchLoss) {
        a.bce += b.bce; a.kl += b.kl; a.rows += b.rows
    }
}

/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1], from the logits:
/// bce = max(l, 0) - l x + log(1 + e^-|l|), the same value as -x log p - (1-x) log(1-p) with no
/// log(0) for saturated pixels. Its gradient with respect to l is sigmoid(l) - x.
public enum BinaryCrossEntropy {
    /// Per-row BCE sums; when `gradientScale` is given, logits are overwritten in place by
    /// gradientScale * (sigmoid(l) - x), fusing loss and gradient into one pass.
    /// `targets` rows are `targetStride` floats apart (the encoder input holds the pixels).
    @inline(__always)
    public static func evaluate(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>, targetStride: Int,
                                rows: Int, width: Int, gradientScale: Float?, rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        typealias V = FastMath.V
        var total = 0.0
        let vectorWidth = width / 8 * 8
        for r in 0..<rows {
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

/// The diagonal Gaussian posterior: reparameterization and its KL to N(0, I), fused.
public enum GaussianLatent {
    /// z = mean + exp(logvar / 2) * eps into `z` (rows `zStride` apart); returns the KL sum.
    /// `heads` rows are [mean (latent) | logvar (latent)].
    @inline(__always)
    public static func sample(heads: UnsafePointer<Float>, eps: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>,
                              zStride: Int, rows: Int, latent: Int, rowKL: UnsafeMutablePointer<Float>?) -> Double {
        var total = 0.0
        for r in 0..<rows {
            let h = heads + r * 2 * latent
            let e = eps + r * latent
            let zr = z + r * zStride
            var kl: Float = 0
            for j in 0..<latent {
                let mean = h[j], logvar = h[latent + j]
                let variance = expf(logvar)
                zr[j] = mean + variance.squareRoot() * e[j]
                kl += -0.5 * (1 + logvar - mean * mean - variance)
            }
            rowKL?[r] = kl
            total += Double(kl)
        }
        return total
    }

    /// Gradients of the heads from dL/dz (rows `dzStride` apart) plus klScale * dKL.
    @inline(__always)
    public static func backward(heads: UnsafePointer<Float>, eps: UnsafePointer<Float>, dz: UnsafePointer<Float>, dzStride: Int,
                                dHeads: UnsafeMutablePointer<Float>, rows: Int, latent: Int, klScale: Float) {
        for r in 0..<rows {
            let h = heads + r * 2 * latent
            let e = eps + r * latent
            let g = dz + r * dzStride
            let d = dHeads + r * 2 * latent
            for j in 0..<latent {
                let mean = h[j], logvar = h[latent + j]
                let variance = expf(logvar)
                d[j] = g[j] + klScale * mean
                d[latent + j] = g[j] * e[j] * 0.5 * variance.squareRoot() + klScale * 0.5 * (variance - 1)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
