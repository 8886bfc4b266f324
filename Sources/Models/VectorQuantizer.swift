import COpenBLAS

/// The vector-quantized latent of a VQ-VAE (van den Oord et al. 2017, seed 001): the encoder's
/// output z_e [D, H, W] is read as H W vectors of D values, each replaced by its nearest code
/// of a learned codebook [K, D]; the decoder gets z_q, those codes in the same NCHW layout.
///
/// Loss per sample, summed over positions (disttrain sums every term per sample):
///   vq = |sg(z_e) - e|^2 (codebook) + commitment * |z_e - sg(e)|^2 (commitment)
/// Its value is (1 + commitment) |z_e - e|^2; the two terms differ only in where the gradient
/// goes. Gradients (times `weight`, the trainer's scale and loss weight):
///   dL/dz_e = dL/dz_q (straight-through: the quantizer is the identity backwards)
///             + weight * 2 commitment (z_e - e)
///   dL/de_k = weight * 2 sum over positions assigned to k of (e_k - z_e)
/// The codebook is a trainable tensor of the flat parameter buffer, exported as PyTorch's
/// nn.Embedding would be (`quantizer.embedding.weight` [K, D]).
///
/// With an EMA decay gamma > 0 (van den Oord et al., appendix A.1) the codebook is not trained
/// by the gradient: it lives in the state buffer (saved with the model, like BatchNorm's
/// running statistics) with its statistics, and each training step moves them towards the
/// batch's: N_k <- gamma N_k + (1 - gamma) n_k (`quantizer.cluster_size` [K]),
/// m_k <- gamma m_k + (1 - gamma) sum of the z_e assigned to k (`quantizer.embed_sum` [K, D]),
/// e_k = m_k / N_k. N and m start at 0, so the ratio needs no bias correction; a code never
/// chosen keeps its initial vector. n and the sums cover the global batch: they go through the
/// reducer (summed over ranks) before the update, so every rank keeps the same codebook.
///
/// With a restart interval N > 0 (`restartSteps`), a code no position of the global batch
/// chose in N training forwards in a row is re-seeded from an encoder output of the current
/// batch (see DeadCodeRestart.swift); its idle count lives in the state buffer
/// (`quantizer.steps_unused` [K]) so a resumed run restarts the same codes.
///
/// Dimension legend: K codes, D code dimension (the `latent` of the config), S = H W positions
/// of the encoder's output per sample, B rows.
public final class VectorQuantizer: Sendable {
    public let codes: Int
    public let dimension: Int
    public let positions: Int
    /// Weight of the commitment term (beta = 0.25 in the paper and the seed).
    public let commitment: Float
    /// EMA decay gamma of the codebook updates; 0: the codebook follows the gradient.
    public let emaDecay: Float
    public var usesEMA: Bool { emaDecay > 0 }
    /// Offset of the codebook [K, D]: in the flat parameter (and gradient) buffer, or with EMA
    /// in the state buffer.
    public let codebookOffset: Int
    /// EMA only: offsets of N [K] and m [K, D] in the state buffer.
    public let clusterSizeOffset: Int
    public let embedSumOffset: Int
    /// Training forwards without an assignment after which a code is re-seeded; 0: never.
    public let restartSteps: Int
    /// Restart only: offset of the idle counts [K] in the state buffer (-1 without restart).
    public let idleOffset: Int
    public static let tensorName = "quantizer.embedding.weight"

    public init(codes: Int, dimension: Int, positions: Int, commitment: Float, emaDecay: Float = 0, restartSteps: Int = 0,
                builder: inout LayerBuilder) {
        precondition(codes >= 1 && dimension >= 1 && positions >= 1 && emaDecay >= 0 && emaDecay < 1 && restartSteps >= 0)
        self.codes = codes
        self.dimension = dimension
        self.positions = positions
        self.commitment = commitment
        self.emaDecay = emaDecay
        self.restartSteps = restartSteps
        if emaDecay > 0 {
            codebookOffset = builder.state.reserve(codes * dimension)
            clusterSizeOffset = builder.state.reserve(codes)
            embedSumOffset = builder.state.reserve(codes * dimension)
            builder.state.export(Self.tensorName, shape: [codes, dimension], offset: codebookOffset)
            builder.state.export("quantizer.cluster_size", shape: [codes], offset: clusterSizeOffset)
            builder.state.export("quantizer.embed_sum", shape: [codes, dimension], offset: embedSumOffset)
        } else {
            codebookOffset = builder.parameters.reserve(codes * dimension)
            clusterSizeOffset = -1
            embedSumOffset = -1
            builder.parameters.export(Self.tensorName, shape: [codes, dimension], offset: codebookOffset)
        }
        if restartSteps > 0 {
            idleOffset = builder.state.reserve(codes)
            builder.state.export(Self.idleTensorName, shape: [codes], offset: idleOffset)
        } else {
            idleOffset = -1
        }
    }

    /// The codebook [K, D] inside whichever buffer holds it.
    @inline(__always)
    public func codebook(params: UnsafePointer<Float>, state: UnsafePointer<Float>?) -> UnsafePointer<Float> {
        if usesEMA {
            guard let state else { preconditionFailure("an EMA codebook lives in the state buffer: pass it") }
            return state + codebookOffset
        }
        return params + codebookOffset
    }

    /// Float64 scratch an EMA update needs: n [K] and the sums [K, D].
    public var emaScratchCount: Int { usesEMA ? codes + codes * dimension : 0 }

    /// One EMA step from the assignments of the last forward (`codeIndices`, z_e rows
    /// [B, D, S]); `scratch` [K + K D] float64; `reducer` sums n and the sums over ranks.
    public func updateEMA(state: UnsafeMutablePointer<Float>, zE: UnsafePointer<Float>, codeIndices: UnsafePointer<Int32>,
                          rows: Int, reducer: (any BatchStatisticsReducer)?, scratch: UnsafeMutablePointer<Double>) {
        let K = codes, D = dimension, S = positions
        let n = scratch, sums = scratch + K
        scratch.update(repeating: 0, count: K + K * D)
        for r in 0..<rows {
            let z = zE + r * D * S
            for s in 0..<S {
                let k = Int(codeIndices[r * S + s])
                n[k] += 1
                for d in 0..<D { sums[k * D + d] += Double(z[d * S + s]) }
            }
        }
        reducer?.sum(scratch, count: K + K * D)
        let gamma = Double(emaDecay)
        let book = state + codebookOffset, size = state + clusterSizeOffset, embedSum = state + embedSumOffset
        for k in 0..<K {
            let N = gamma * Double(size[k]) + (1 - gamma) * n[k]
            size[k] = Float(N)
            for d in 0..<D {
                let m = gamma * Double(embedSum[k * D + d]) + (1 - gamma) * sums[k * D + d]
                embedSum[k * D + d] = Float(m)
                if N > 0 { book[k * D + d] = Float(m / N) }
            }
        }
    }

    /// Floats of scratch one quantization needs: scores [S, K] and code norms [K].
    public var scratchCount: Int { positions * codes + codes }

    /// The seed's initialization: uniform(-1/K, 1/K), drawn after the encoder's parameters
    /// (into `params`, or for an EMA codebook into `state`, whose N and m start at 0; without
    /// `state` an EMA codebook's draws are dropped).
    public func initialize(_ params: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>?, rng: inout SplitMix64) {
        let bound = 1 / Float(codes)
        if restartSteps > 0, let state { (state + idleOffset).update(repeating: 0, count: codes) }
        var book: UnsafeMutablePointer<Float>? = params + codebookOffset
        if usesEMA {
            // Without the state buffer the draws are made and dropped, so the decoder's
            // parameters come out the same either way.
            book = state.map { $0 + codebookOffset }
            if let state {
                (state + clusterSizeOffset).update(repeating: 0, count: codes)
                (state + embedSumOffset).update(repeating: 0, count: codes * dimension)
            }
        }
        for i in 0..<(codes * dimension) {
            let value = rng.uniform(-bound, bound)
            book?[i] = value
        }
    }

    /// Nearest code per position: z_e rows [B, D, S] -> code indices [B, S] and z_q [B, D, S]
    /// (rows `zqStride` floats apart). Ties go to the lower index. Per-row |z_e - z_q|^2 times
    /// (1 + commitment) into `rowLoss`; each assignment adds 1 to `counts` [K] when given
    /// (the epoch's usage tally). Returns the sum of the row losses.
    ///
    /// Distances through one sgemm per row: |z - e_k|^2 = |z|^2 - 2 z.e_k + |e_k|^2, the first
    /// term the same for every k; the loss itself is the exact squared difference.
    public func forward(codebook book: UnsafePointer<Float>, zE: UnsafePointer<Float>, zQ: UnsafeMutablePointer<Float>, zqStride: Int,
                        codeIndices: UnsafeMutablePointer<Int32>, rows: Int, rowLoss: UnsafeMutablePointer<Float>?,
                        counts: UnsafeMutablePointer<Double>?, scratch: UnsafeMutablePointer<Float>) -> Double {
        let K = codes, D = dimension, S = positions
        let scores = scratch, norms = scratch + S * K   // [S, K], [K]
        for k in 0..<K {
            var n: Float = 0
            for d in 0..<D { n += book[k * D + d] * book[k * D + d] }
            norms[k] = n
        }
        var total = 0.0
        for r in 0..<rows {
            let z = zE + r * D * S
            // scores[S, K] = z^T [S, D] . book^T [D, K]
            BLASAllocations.counting {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(S), Int32(K), Int32(D), 1, z, Int32(S),
                            book, Int32(D), 0, scores, Int32(K))
            }
            let q = zQ + r * zqStride
            var rowSum = 0.0
            for s in 0..<S {
                let sc = scores + s * K
                var best = 0
                var bestDistance = norms[0] - 2 * sc[0]
                for k in 1..<max(K, 1) {
                    let distance = norms[k] - 2 * sc[k]
                    if distance < bestDistance { bestDistance = distance; best = k }
                }
                codeIndices[r * S + s] = Int32(best)
                counts?[best] += 1
                let e = book + best * D
                for d in 0..<D {
                    q[d * S + s] = e[d]
                    let diff = Double(z[d * S + s]) - Double(e[d])
                    rowSum += diff * diff
                }
            }
            let loss = (1 + Double(commitment)) * rowSum
            rowLoss?[r] = Float(loss)
            total += loss
        }
        return total
    }

    /// dL/dz_e into `dzE` [B, D, S] from dL/dz_q (rows `dzqStride` apart, as are those of
    /// z_q, the last forward's output), and the codebook's gradient into `grads` (added when
    /// `accumulate`; none for an EMA codebook, `grads` nil).
    public func backward(grads: UnsafeMutablePointer<Float>?, zE: UnsafePointer<Float>, zQ: UnsafePointer<Float>,
                         codeIndices: UnsafePointer<Int32>, dzQ: UnsafePointer<Float>, dzqStride: Int,
                         dzE: UnsafeMutablePointer<Float>, rows: Int, weight: Float, accumulate: Bool) {
        let D = dimension, S = positions
        let dBook = grads.map { $0 + codebookOffset }
        if let dBook, !accumulate { dBook.update(repeating: 0, count: codes * D) }
        let commit = weight * 2 * commitment, pull = weight * 2
        for r in 0..<rows {
            let z = zE + r * D * S, g = dzQ + r * dzqStride, dz = dzE + r * D * S, q = zQ + r * dzqStride
            for s in 0..<S {
                let k = Int(codeIndices[r * S + s])
                for d in 0..<D {
                    let diff = z[d * S + s] - q[d * S + s]
                    dz[d * S + s] = g[d * S + s] + commit * diff
                    dBook?[k * D + d] -= pull * diff
                }
            }
        }
    }
}
