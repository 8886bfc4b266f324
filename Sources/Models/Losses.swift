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

    /// Per-sample means of the objective and its two terms (zero rows count as one, so an
    /// empty sum gives zeros rather than NaN).
    public func means(beta: Double) -> (loss: Double, bce: Double, kl: Double) {
        let n = Double(max(rows, 1))
        return (total(beta: beta) / n, bce / n, kl / n)
    }

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

/// The categorical posterior q(c|x) = softmax(logits), relaxed with Gumbel-softmax:
/// y = softmax((l + g) / tau), g = -log(-log u), u = Phi(eps). The standard-normal `eps` the
/// caller already fills is mapped through the normal CDF, so every noise source keeps working.
/// KL(q || Uniform(K)) = sum_k q_k log(q_k K). Computed in float64 internally (K is small).
public enum CategoricalLatent {
    /// Smallest / largest uniform allowed into the Gumbel transform.
    static let uMin = 1e-7, uMax = 1 - 1e-7

    /// Gumbel noise from one standard-normal draw.
    @inline(__always)
    public static func gumbel(_ eps: Float) -> Double {
        let u = min(max(0.5 * erfc(-Double(eps) / 2.0.squareRoot()), uMin), uMax)
        return -log(-log(u))
    }

    /// q = softmax(l) into `q`, log q into `logQ`; returns sum_k q_k log q_k.
    @inline(__always)
    static func posterior(_ l: UnsafePointer<Float>, _ k: Int, q: UnsafeMutablePointer<Double>, logQ: UnsafeMutablePointer<Double>) -> Double {
        var m = -Double.infinity
        for j in 0..<k { m = max(m, Double(l[j])) }
        var s = 0.0
        for j in 0..<k { s += exp(Double(l[j]) - m) }
        let lse = m + log(s)
        var negEntropy = 0.0
        for j in 0..<k {
            logQ[j] = Double(l[j]) - lse
            q[j] = exp(logQ[j])
            negEntropy += q[j] * logQ[j]
        }
        return negEntropy
    }

    /// y = softmax((l + g) / tau) into `y` (Double scratch `out`, also written to the Float row).
    @inline(__always)
    static func relaxed(_ l: UnsafePointer<Float>, _ e: UnsafePointer<Float>, _ k: Int, temperature: Float,
                        out: UnsafeMutablePointer<Double>) {
        let tau = Double(temperature)
        var m = -Double.infinity
        for j in 0..<k {
            out[j] = (Double(l[j]) + gumbel(e[j])) / tau
            m = max(m, out[j])
        }
        var s = 0.0
        for j in 0..<k { out[j] = exp(out[j] - m); s += out[j] }
        for j in 0..<k { out[j] /= s }
    }

    /// Writes y into `y` (rows `yStride` apart) and the per-row KL into `rowKL`; returns the KL sum.
    /// `logits` rows are `categories` floats apart, as are `eps` rows.
    public static func sample(logits: UnsafePointer<Float>, eps: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                              yStride: Int, rows: Int, categories k: Int, temperature: Float,
                              rowKL: UnsafeMutablePointer<Float>?, scratch given: UnsafeMutablePointer<Double>? = nil) -> Double {
        // [3K] float64 scratch: the workspace's in the step loop (no allocation), else a temporary.
        let scratch = given ?? .allocate(capacity: 3 * k)
        defer { if given == nil { scratch.deallocate() } }
        let q = scratch, logQ = scratch + k, soft = scratch + 2 * k
        let logK = log(Double(k))
        var total = 0.0
        for r in 0..<rows {
            let l = logits + r * k
            let kl = max(0, posterior(l, k, q: q, logQ: logQ) + logK)  // >= 0 up to rounding
            relaxed(l, eps + r * k, k, temperature: temperature, out: soft)
            let yr = y + r * yStride
            for j in 0..<k { yr[j] = Float(soft[j]) }
            rowKL?[r] = Float(kl)
            total += kl
        }
        return total
    }

    /// dL/dlogits from dL/dy (rows `dyStride` apart) plus klScale * dKL/dlogits:
    /// ds = y (dy - sum(dy y)); dl = ds / tau + klScale * q_j (log q_j - sum_k q_k log q_k).
    public static func backward(logits: UnsafePointer<Float>, eps: UnsafePointer<Float>, dy: UnsafePointer<Float>, dyStride: Int,
                                dLogits: UnsafeMutablePointer<Float>, rows: Int, categories k: Int, temperature: Float,
                                klScale: Float, scratch given: UnsafeMutablePointer<Double>? = nil) {
        let scratch = given ?? .allocate(capacity: 3 * k)
        defer { if given == nil { scratch.deallocate() } }
        let q = scratch, logQ = scratch + k, soft = scratch + 2 * k
        let tau = Double(temperature), beta = Double(klScale)
        for r in 0..<rows {
            let l = logits + r * k
            let negEntropy = posterior(l, k, q: q, logQ: logQ)
            relaxed(l, eps + r * k, k, temperature: temperature, out: soft)
            let g = dy + r * dyStride
            var dot = 0.0
            for j in 0..<k { dot += Double(g[j]) * soft[j] }
            let d = dLogits + r * k
            for j in 0..<k {
                let ds = soft[j] * (Double(g[j]) - dot)
                d[j] = Float(ds / tau + beta * q[j] * (logQ[j] - negEntropy))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
