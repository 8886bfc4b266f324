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
