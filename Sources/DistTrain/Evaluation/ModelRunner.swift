import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Batched forward passes of a trained model for pictures and analysis (not the step loop:
/// these allocate their workspaces per call).
public struct ModelRunner {
    public let model: VAE
    public let params: UnsafePointer<Float>
    /// [stateCount] BatchNorm running statistics (eval mode), nil for models without state.
    public let state: UnsafeMutablePointer<Float>?
    /// Rows per forward pass.
    public let batch: Int

    public init(model: VAE, params: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>? = nil, batch: Int = 500) {
        self.model = model
        self.params = params
        self.state = state
        self.batch = max(1, batch)
    }

    /// The encoder's heads (rows `headsWidth` floats apart: [mean | logvar], or the K category
    /// logits) for `shard`'s records `locals` (local indices), each encoded with its own label.
    public func encodedHeads(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let width = model.architecture.headsWidth
        return try encodeInBatches(shard, locals: locals, width: width) { ws, rows, out in
            for i in 0..<(rows * width) { out[i] = ws.heads.base[i] }
        }
    }

    /// The batch loop of `encodedHeads` and `quantizedCodes`: encodes `shard`'s records `locals`
    /// `batch` at a time, each with its own label, and lets `collect(ws, rows, out)` copy the
    /// batch's `rows` results into out [rows, width], the batch's place in the returned
    /// [locals.count, width].
    private func encodeInBatches(_ shard: DatasetShard, locals: [Int], width: Int,
                                 _ collect: (_ ws: VAEWorkspace, _ rows: Int, _ out: UnsafeMutablePointer<Float>) -> Void)
        throws -> [Float] {
        let a = model.architecture
        guard shard.inputDim == a.inputDim else {
            throw AnalysisError.imageSize(path: "the data", pixels: shard.inputDim, modelPixels: a.inputDim)
        }
        let ws = VAEWorkspace(model: model, capacity: min(batch, max(locals.count, 1)))
        var out = [Float](repeating: 0, count: locals.count * width)
        out.withUnsafeMutableBufferPointer { o in
            var start = 0
            while start < locals.count {
                let rows = min(ws.capacity, locals.count - start)
                for r in 0..<rows { shard.fill(ws, row: r, local: locals[start + r], architecture: a) }
                model.encode(params, ws, rows: rows, state: state)
                collect(ws, rows, o.baseAddress! + start * width)
                start += rows
            }
        }
        return out
    }

    /// Posterior means (rows `latent` floats apart) of `shard`'s records `locals` (local indices),
    /// each encoded with its own label. Gaussian latents only: a categorical latent has no mean
    /// (see `codes`), and throws `AnalysisError.needsGaussianLatent`.
    public func posteriorMeans(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let a = model.architecture
        if a.latentKind == .vectorQuantized {
            throw AnalysisError.vectorQuantized(path: nil, what: "a posterior mean", codes: a.codebookSize)
        }
        guard a.latentKind == .gaussian else {
            throw AnalysisError.needsGaussianLatent(path: nil, what: "a posterior mean", categories: a.latent)
        }
        let heads = try encodedHeads(shard, locals: locals)
        var out = [Float](repeating: 0, count: locals.count * a.latent)
        for r in 0..<locals.count {
            for j in 0..<a.latent { out[r * a.latent + j] = heads[r * 2 * a.latent + j] }
        }
        return out
    }

    /// The deterministic code of each record (rows `latent` floats apart), what the decoder is
    /// given to reconstruct or restyle it: the posterior mean of a Gaussian latent, the one-hot
    /// most likely category (argmax of the logits) of a categorical one.
    public func codes(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let a = model.architecture
        switch a.latentKind {
        case .gaussian:
            return try posteriorMeans(shard, locals: locals)
        case .categorical:
            let logits = try encodedHeads(shard, locals: locals)
            let categories = logits.withUnsafeBufferPointer { p in
                (0..<locals.count).map { ClusterTally.argmax(p.baseAddress! + $0 * a.latent, count: a.latent) }
            }
            return ModelRunner.oneHot(categories, width: a.latent)
        case .vectorQuantized:
            return try quantizedCodes(shard, locals: locals)
        }
    }

    /// z_q of each record (rows `latentWidth` = D x positions floats apart, NCHW): the nearest
    /// codebook vector at every position of the encoder's output (vector-quantized latent).
    public func quantizedCodes(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let a = model.architecture
        let width = a.latentWidth
        return try encodeInBatches(shard, locals: locals, width: width) { ws, rows, out in
            _ = model.quantize(params, ws, rows: rows, counts: nil, state: state)
            for r in 0..<rows {
                for j in 0..<width { out[r * width + j] = ws.decoderInput.base[r * a.decoderInputWidth + j] }
            }
        }
    }

    /// Rows of `width` zeros with a 1 at each index.
    public static func oneHot(_ indices: [Int], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: indices.count * width)
        for (r, i) in indices.enumerated() { out[r * width + i] = 1 }
        return out
    }

    /// Pixel probabilities in [0, 1] (rows `inputDim` floats apart) for each (z, label) pair.
    /// `z` holds `labels.count * latentWidth` floats (latent, or D x positions for a VQ latent); labels are ignored by an unconditional decoder.
    public func decode(z: [Float], labels: [Int]) -> [Float] {
        let a = model.architecture
        let width = a.latentWidth
        precondition(z.count == labels.count * width)
        let ws = VAEWorkspace(model: model, capacity: min(batch, max(labels.count, 1)))
        var out = [Float](repeating: 0, count: labels.count * a.inputDim)
        var start = 0
        while start < labels.count {
            let rows = min(ws.capacity, labels.count - start)
            for r in 0..<rows {
                let dst = ws.decoderInput.base + r * a.decoderInputWidth
                for j in 0..<width { dst[j] = z[(start + r) * width + j] }
                ws.setLabel(row: r, label: labels[start + r], architecture: a)
            }
            model.decode(params, ws, rows: rows, state: state)
            out.withUnsafeMutableBufferPointer {
                BinaryCrossEntropy.sigmoid(ws.logits.base, $0.baseAddress! + start * a.inputDim, count: rows * a.inputDim)
            }
            start += rows
        }
        return out
    }

    /// `count` draws z ~ N(0, I), repeatable from `seed` (draw i depends only on seed and i).
    public func priorDraws(count: Int, seed: UInt64) -> [Float] {
        let latent = model.architecture.latent
        var z = [Float](repeating: 0, count: count * latent)
        guard count > 0 else { return z }
        let ids = (0..<count).map { Int32(truncatingIfNeeded: $0) }
        z.withUnsafeMutableBufferPointer { zp in
            ids.withUnsafeBufferPointer {
                GaussianNoise.fill(zp.baseAddress!, rows: count, dim: latent, ids: $0.baseAddress!,
                                   key: GaussianNoise.key(seed: seed, stream: AnalysisNoise.generate, counter: 0))
            }
        }
        return z
    }

    /// `count` generated images of `label` (any label for an unconditional model), z ~ N(0, I)
    /// drawn from `seed`: the same seed gives the same images.
    public func generate(label: Int, count: Int, seed: UInt64) -> [Float] {
        decode(z: priorDraws(count: count, seed: seed), labels: Array(repeating: label, count: count))
    }

    /// The pixels of `shard`'s record `local` as floats in [0, 1].
    public static func pixels(_ shard: DatasetShard, local: Int) -> [Float] {
        let d = shard.inputDim
        return shard.pixels[(local * d)..<((local + 1) * d)].map { Float($0) / 255 }
    }

    /// Style transfer: each record in `locals` is encoded with its own label, and its code (the
    /// posterior mean, or a categorical latent's most likely category, see `codes`) is decoded
    /// with every label 0..<classes. Returns `classes` images per record, record-major
    /// (record i, label k at index i * classes + k).
    public func restyle(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let a = model.architecture
        let coded = try codes(shard, locals: locals)
        var z: [Float] = []
        var labels: [Int] = []
        let width = a.latentWidth
        z.reserveCapacity(locals.count * a.classes * width)
        for i in 0..<locals.count {
            for k in 0..<a.classes {
                z.append(contentsOf: coded[(i * width)..<((i + 1) * width)])
                labels.append(k)
            }
        }
        return decode(z: z, labels: labels)
    }

    /// Reconstructions of `locals`: each record's code (the posterior mean, or a categorical
    /// latent's most likely category as a one-hot vector, see `codes`) decoded with the
    /// record's own label.
    public func reconstruct(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        return decode(z: try codes(shard, locals: locals), labels: locals.map { Int(shard.labels[$0]) })
    }

    /// The decoded latent manifold of a 2-D latent space: an n x n grid at the standard-normal
    /// quantiles of linspace(0.05, 0.95, n) (seed 003's layout). Cell (row i, column j)
    /// decodes z = (q_j, q_i): z1 grows to the right, z2 grows downwards. Row-major cells.
    public func manifold(n: Int, label: Int) -> [Float] {
        let q = NormalQuantile.grid(n: n, low: 0.05, high: 0.95).map(Float.init)
        var z: [Float] = []
        z.reserveCapacity(n * n * 2)
        for i in 0..<n { for j in 0..<n { z.append(q[j]); z.append(q[i]) } }
        return decode(z: z, labels: Array(repeating: label, count: n * n))
    }
}

// MARK: - Reconstruction grid for the trainer
