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
