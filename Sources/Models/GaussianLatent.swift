#if canImport(Glibc)
import Glibc
#endif
/// The diagonal Gaussian posterior: reparameterization and its KL to N(0, I), fused.
public enum GaussianLatent {
    /// z = mean + exp(logvar / 2) * eps into `z` (rows `zStride` apart); returns the KL sum.
    /// `heads` rows are [mean (latent) | logvar (latent)].
    @inline(__always)
    public static func sample(heads: UnsafePointer<Float>, eps: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>,
                              zStride: Int, rows: Int, latent: Int, rowKL: UnsafeMutablePointer<Float>?) -> Double {
        guard let rowKL else {
            return sampleRows(0..<rows, heads: heads, eps: eps, z: z, zStride: zStride, latent: latent, rowKL: nil)
        }
        // Rows split over the WorkerPool; the total summed from rowKL in row order, as before.
        var pass = LatentPass(heads: heads, eps: eps, z: z, zStride: zStride, rows: rows, latent: latent, rowKL: rowKL, klScale: 0)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: pass.rowsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: LatentPass.self).pointee
            _ = GaussianLatent.sampleRows(WorkerPool.range(chunk, count: p.rows, size: p.rowsPerChunk), heads: p.heads, eps: p.eps,
                                          z: p.z, zStride: p.zStride, latent: p.latent, rowKL: p.rowKL)
        }
        var total = 0.0
        for r in 0..<rows { total += Double(rowKL[r]) }
        return total
    }

    /// The rows `range` of `sample`, on the calling thread; returns their KL sum.
    @inline(__always)
    static func sampleRows(_ range: Range<Int>, heads: UnsafePointer<Float>, eps: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>,
                           zStride: Int, latent: Int, rowKL: UnsafeMutablePointer<Float>?) -> Double {
        var total = 0.0
        for r in range {
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
        // dz travels in `z` (read only here), dHeads in `rowKL`'s place.
        var pass = LatentPass(heads: heads, eps: eps, z: UnsafeMutablePointer(mutating: dz), zStride: dzStride, rows: rows,
                              latent: latent, rowKL: dHeads, klScale: klScale)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: pass.rowsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: LatentPass.self).pointee
            let latent = p.latent, klScale = p.klScale
            for r in WorkerPool.range(chunk, count: p.rows, size: p.rowsPerChunk) {
                let h = p.heads + r * 2 * latent
                let e = p.eps + r * latent
                let g = p.z + r * p.zStride
                let d = p.rowKL + r * 2 * latent
                for j in 0..<latent {
                    let mean = h[j], logvar = h[latent + j]
                    let variance = expf(logvar)
                    d[j] = g[j] + klScale * mean
                    d[latent + j] = g[j] * e[j] * 0.5 * variance.squareRoot() + klScale * 0.5 * (variance - 1)
                }
            }
        }
    }

    /// The arguments of the sample (and, with dz in `z` and dHeads in `rowKL`, backward) row
    /// chunks, for the WorkerPool.
    struct LatentPass {
        var heads: UnsafePointer<Float>
        var eps: UnsafePointer<Float>
        var z: UnsafeMutablePointer<Float>
        var zStride: Int
        var rows: Int
        var latent: Int
        var rowKL: UnsafeMutablePointer<Float>
        var klScale: Float
        var rowsPerChunk: Int { Activation.rowsPerChunk(width: 8 * latent) }
    }
}
