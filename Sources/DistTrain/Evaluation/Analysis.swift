import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

// Post-training analysis of a checkpoint: loading it on its own, sampling, style transfer,
// reconstructions, latent codes and the test-set likelihood. Used by the `generate`, `style`,
// `reconstruct`, `eval` and `manifold` subcommands, and callable from the trainer.

/// A request the checkpoint or the data cannot satisfy.
public enum AnalysisError: Error, CustomStringConvertible, Equatable {
    /// The manifold needs a 2-dimensional latent space.
    case latentNotTwo(path: String, latent: Int)
    /// The decoder does not see the label, so a label cannot be chosen.
    case unconditional(path: String, what: String)
    /// The request needs a Gaussian latent; the model's is categorical with `categories`
    /// categories. `path` names the checkpoint when known.
    case needsGaussianLatent(path: String?, what: String, categories: Int)
    /// A category of a categorical latent outside 0..<categories.
    case categoryOutOfRange(category: Int, categories: Int)
    case labelOutOfRange(label: Int, classes: Int)
    case indexOutOfRange(what: String, index: Int, count: Int, path: String)
    case tooFewWithLabel(label: Int, found: Int, wanted: Int, path: String)
    case countTooLarge(what: String, count: Int, available: Int, path: String)
    case imageSize(path: String, pixels: Int, modelPixels: Int)

    public var description: String {
        switch self {
        case let .latentNotTwo(path, latent):
            return "checkpoint \(path): a latent manifold needs a model with a 2-dimensional latent space; this one has \(latent) dimensions (train one with model.latent 2, e.g. configs/cvae-2d.json)"
        case let .unconditional(path, what):
            return "checkpoint \(path): \(what) needs a model whose decoder sees the label (conditioning \"both\" or \"decoder\"); this one is unconditional"
        case let .needsGaussianLatent(path, what, categories):
            return "\(path.map { "checkpoint \($0)" } ?? "the model"): \(what) needs a Gaussian latent; this model's latent is categorical (Gumbel-softmax over \(categories) categories)"
        case let .categoryOutOfRange(category, categories):
            return "category \(category) is out of range: the model's categorical latent has \(categories) categories (0...\(categories - 1))"
        case let .labelOutOfRange(label, classes):
            return "label \(label) is out of range: the model has \(classes) classes (0...\(classes - 1))"
        case let .indexOutOfRange(what, index, count, path):
            return "\(what) \(index) is out of range: \(path) holds \(count) images (0...\(count - 1))"
        case let .tooFewWithLabel(label, found, wanted, path):
            return "\(path) holds only \(found) images of label \(label), \(wanted) were asked for"
        case let .countTooLarge(what, count, available, path):
            return "\(what) \(count) exceeds the \(available) images of \(path)"
        case let .imageSize(path, pixels, modelPixels):
            return "\(path) has images of \(pixels) pixels, the model was trained on \(modelPixels)"
        }
    }
}

/// Noise streams of the analysis tools, disjoint from training's (`NoiseStream`, 1-3).
public enum AnalysisNoise {
    /// z of `generate`.
    public static let generate: UInt64 = 16
    /// Reparameterization noise of the sampled ELBO in `eval`.
    public static let evalELBO: UInt64 = 17
    /// Importance samples of `eval`.
    public static let importance: UInt64 = 18
}

// MARK: - Loading

/// A trained model read back from a checkpoint: the architecture comes from the file's
/// metadata, so no config is needed.
public final class TrainedModel {
    /// The model.safetensors file that was read.
    public let path: String
    public let model: VAE
    public let params: FloatBuffer
    /// The safetensors metadata (format, config, epoch, step, training_config).
    public let metadata: [String: String]

    public var architecture: VAEArchitecture { model.architecture }

    /// Loads `checkpoint`: see `resolve` for the accepted forms.
    public init(checkpoint: String) throws {
        let file = try TrainedModel.resolve(checkpoint)
        let header = try SafeTensors.read(path: file)
        let arch = try ModelMetadata.architecture(from: header.metadata, path: file)
        model = VAE(arch)
        params = FloatBuffer(count: model.parameterCount)
        try Checkpoint.readModel(model, into: params.base, from: file)
        path = file
        metadata = header.metadata
    }

    /// The model.safetensors file a checkpoint argument names. Accepted, in this order:
    /// a model.safetensors file; a checkpoint directory holding one; a pointer file such as
    /// RUN/checkpoints/best or RUN/checkpoints/latest (it holds the name of a sibling checkpoint
    /// directory); a checkpoints directory (its `latest`); a run directory (its
    /// checkpoints/latest). Throws `CheckpointError.missing` when none applies.
    public static func resolve(_ path: String) throws -> String {
        func pointed(_ pointer: String) -> String? {
            guard !FileBytes.isDirectory(pointer), let text = try? FileBytes.readString(pointer) else { return nil }
            let name = text.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\r" }).first.map(String.init) ?? ""
            guard !name.isEmpty, !name.contains("/") else { return nil }
            let dir = parent(of: pointer) + "/" + name
            let file = dir + "/model.safetensors"
            return FileBytes.exists(file) ? file : nil
        }
        if FileBytes.isDirectory(path) {
            if FileBytes.exists(path + "/model.safetensors") { return path + "/model.safetensors" }
            if let f = pointed(path + "/latest") { return f }
            if let f = pointed(path + "/checkpoints/latest") { return f }
            throw CheckpointError.missing(path: path + "/model.safetensors")
        }
        guard FileBytes.exists(path) else { throw CheckpointError.missing(path: path) }
        if let f = pointed(path) { return f }
        return path
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }
}

/// Where the four MNIST IDX files of a data directory are (gzip or raw).
public struct MNISTFiles: Sendable {
    public let dir: String

    public init(dir: String) { self.dir = dir }

    public var trainImages: String { file("train-images-idx3-ubyte") }
    public var trainLabels: String { file("train-labels-idx1-ubyte") }
    public var testImages: String { file("t10k-images-idx3-ubyte") }
    public var testLabels: String { file("t10k-labels-idx1-ubyte") }

    /// `name.gz` if it exists, else `name` if that exists, else `name.gz` (so errors name the usual file).
    func file(_ name: String) -> String {
        let base = dir.hasSuffix("/") ? dir + name : dir + "/" + name
        if FileBytes.exists(base + ".gz") { return base + ".gz" }
        return FileBytes.exists(base) ? base : base + ".gz"
    }

    /// Records `range` (default: all) of the test set.
    public func test(classes: Int, range: ((Int) throws -> Range<Int>)? = nil) throws -> DatasetShard {
        try DatasetShard.load(images: testImages, labels: testLabels, classes: classes, range: range ?? { 0..<$0 })
    }

    /// Records `range` (default: all) of the training set.
    public func train(classes: Int, range: ((Int) throws -> Range<Int>)? = nil) throws -> DatasetShard {
        try DatasetShard.load(images: trainImages, labels: trainLabels, classes: classes, range: range ?? { 0..<$0 })
    }
}

// MARK: - Encoding and decoding outside training

/// Batched forward passes of a trained model for pictures and analysis (not the step loop:
/// these allocate their workspaces per call).
public struct ModelRunner {
    public let model: VAE
    public let params: UnsafePointer<Float>
    /// Rows per forward pass.
    public let batch: Int

    public init(model: VAE, params: UnsafePointer<Float>, batch: Int = 500) {
        self.model = model
        self.params = params
        self.batch = max(1, batch)
    }

    /// The encoder's heads (rows `headsWidth` floats apart: [mean | logvar], or the K category
    /// logits) for `shard`'s records `locals` (local indices), each encoded with its own label.
    public func encodedHeads(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let a = model.architecture
        guard shard.inputDim == a.inputDim else {
            throw AnalysisError.imageSize(path: "the data", pixels: shard.inputDim, modelPixels: a.inputDim)
        }
        let width = a.headsWidth
        let ws = VAEWorkspace(architecture: a, capacity: min(batch, max(locals.count, 1)))
        var out = [Float](repeating: 0, count: locals.count * width)
        var start = 0
        while start < locals.count {
            let rows = min(ws.capacity, locals.count - start)
            for r in 0..<rows { shard.fill(ws, row: r, local: locals[start + r], architecture: a) }
            model.encode(params, ws, rows: rows)
            for i in 0..<(rows * width) { out[start * width + i] = ws.heads.base[i] }
            start += rows
        }
        return out
    }

    /// Posterior means (rows `latent` floats apart) of `shard`'s records `locals` (local indices),
    /// each encoded with its own label. Gaussian latents only: a categorical latent has no mean
    /// (see `codes`), and throws `AnalysisError.needsGaussianLatent`.
    public func posteriorMeans(_ shard: DatasetShard, locals: [Int]) throws -> [Float] {
        let a = model.architecture
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
        }
    }

    /// Rows of `width` zeros with a 1 at each index.
    public static func oneHot(_ indices: [Int], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: indices.count * width)
        for (r, i) in indices.enumerated() { out[r * width + i] = 1 }
        return out
    }

    /// Pixel probabilities in [0, 1] (rows `inputDim` floats apart) for each (z, label) pair.
    /// `z` holds `labels.count * latent` floats; labels are ignored by an unconditional decoder.
    public func decode(z: [Float], labels: [Int]) -> [Float] {
        let a = model.architecture
        precondition(z.count == labels.count * a.latent)
        let ws = VAEWorkspace(architecture: a, capacity: min(batch, max(labels.count, 1)))
        var out = [Float](repeating: 0, count: labels.count * a.inputDim)
        var start = 0
        while start < labels.count {
            let rows = min(ws.capacity, labels.count - start)
            for r in 0..<rows {
                let dst = ws.decoderInput.base + r * a.decoderInputWidth
                for j in 0..<a.latent { dst[j] = z[(start + r) * a.latent + j] }
                ws.setLabel(row: r, label: labels[start + r], architecture: a)
            }
            model.decode(params, ws, rows: rows)
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
        z.reserveCapacity(locals.count * a.classes * a.latent)
        for i in 0..<locals.count {
            for k in 0..<a.classes {
                z.append(contentsOf: coded[(i * a.latent)..<((i + 1) * a.latent)])
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

/// Layout of a reconstruction grid: `cols` images per row, rows in pairs (originals, then
/// their reconstructions right below).
public enum ReconstructionGrid {
    /// Columns used for `count` images when at most `maxCols` fit in a row.
    public static func columns(count: Int, maxCols: Int = 10) -> Int { max(1, min(count, maxCols)) }

    /// Rows after which a grey line separates one original/reconstruction pair from the next.
    public static func separators(rows: Int) -> [Int] { Array(stride(from: 1, to: rows - 1, by: 2)) }

    /// The grid's cells and shape for originals and reconstructions of `count` images
    /// (`inputDim` floats each): rows alternate originals / reconstructions, `cols` per row;
    /// cells past `count` stay black.
    public static func cells(originals: [Float], reconstructions: [Float], count: Int, inputDim: Int,
                             cols: Int) -> (cells: [Float], rows: Int) {
        let pairRows = (count + cols - 1) / cols
        var cells = [Float](repeating: 0, count: 2 * pairRows * cols * inputDim)
        for i in 0..<count {
            let r = i / cols, c = i % cols
            let top = ((2 * r) * cols + c) * inputDim
            let bottom = ((2 * r + 1) * cols + c) * inputDim
            for p in 0..<inputDim {
                cells[top + p] = originals[i * inputDim + p]
                cells[bottom + p] = reconstructions[i * inputDim + p]
            }
        }
        return (cells, 2 * pairRows)
    }
}

/// Writes a PNG of the first `count` records of `shard` and their reconstructions (posterior
/// mean decoded with the record's own label): up to 10 images per row, each row of originals
/// followed by the row of their reconstructions, a grey line between such pairs of rows. The trainer can call it once per epoch on a
/// fixed set of test images (it allocates its own workspace; nothing in the step loop).
public func writeReconstructionGrid(model: VAE, params: UnsafePointer<Float>, shard: DatasetShard, count: Int,
                                    to path: String) throws {
    let n = min(count, shard.count)
    let runner = ModelRunner(model: model, params: params)
    let locals = Array(0..<n)
    let originals = locals.flatMap { ModelRunner.pixels(shard, local: $0) }
    let recon = try runner.reconstruct(shard, locals: locals)
    let cols = ReconstructionGrid.columns(count: n)
    let (cells, rows) = ReconstructionGrid.cells(originals: originals, reconstructions: recon, count: n,
                                                 inputDim: shard.inputDim, cols: cols)
    try ImageGrid(rows: rows, cols: cols, cellHeight: shard.rows, cellWidth: shard.cols)
        .writePNG(cells, separatorsAfterRows: ReconstructionGrid.separators(rows: rows), to: path)
}

// MARK: - Test-set likelihood

/// Sums of the test-set evaluation over some records (add them across ranks, then divide).
public struct EvaluationSums: Equatable, Sendable {
    /// Records evaluated.
    public var count = 0
    /// Sum over records of the BCE summed over pixels (= -log p(x|z) of a Bernoulli decoder).
    public var bce = 0.0
    /// Sum over records of KL(q(z|x) || N(0, I)).
    public var kl = 0.0
    /// Sum over records of the importance-weighted estimate of -log p(x) (0 when no samples);
    /// for a categorical latent, of the exact -log p(x) (see `CategoricalEvaluation.run`).
    public var nllIW = 0.0

    public init() {}

    /// As an array for `Communicator.sum`, and back.
    public var values: [Double] { [Double(count), bce, kl, nllIW] }
    public init(values v: [Double]) { count = Int(v[0].rounded()); bce = v[1]; kl = v[2]; nllIW = v[3] }
}

/// The test-set likelihood of a trained model.
///
/// - Negative ELBO per record: BCE(x, sigmoid(decoder([z | y]))) summed over pixels plus
///   KL(N(mean, exp(logvar)) || N(0, I)), with z = mean + exp(logvar / 2) eps and one eps per
///   record keyed by (seed, record index); with `posteriorMean`, eps = 0 (z = mean), which is
///   deterministic. BCE and KL are accumulated in float64 from the float32 logits and heads.
/// - Importance-weighted NLL with K samples z_k = mean + std eps_k:
///   -log p(x) ~= -(logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K), with
///   log p(x|z) = -BCE (Bernoulli decoder) and q the diagonal Gaussian posterior. For a
///   conditional model every density is conditioned on the label: this estimates -log p(x|y).
///   It is a stochastic upper bound of -log p(x) that tightens as K grows (for K = 1 it is the
///   sampled negative ELBO).
public enum Evaluation {
    /// Evaluates every record of `shard` (record ids are global, so the noise, and hence the
    /// result, does not depend on how the test set is split over ranks). A categorical latent
    /// is evaluated exactly instead (`CategoricalEvaluation.run`; `samples` and `seed` unused).
    public static func run(model: VAE, params: UnsafePointer<Float>, shard: DatasetShard, samples: Int,
                           posteriorMean: Bool, seed: UInt64, batch: Int = 250, decodeBatch: Int = 1000) -> EvaluationSums {
        let a = model.architecture
        if a.latentKind == .categorical {
            return CategoricalEvaluation.run(model: model, params: params, shard: shard, posteriorMean: posteriorMean,
                                             batch: batch, decodeBatch: decodeBatch).sums
        }
        let latent = a.latent, dim = a.inputDim
        let k = max(samples, 0)
        // Records per encoder pass; the log-weights of one pass stay below 4M doubles.
        let records = max(1, min(batch, shard.count, 4_000_000 / max(k, 1)))
        let enc = VAEWorkspace(architecture: a, capacity: records)
        let dec = k > 0 ? VAEWorkspace(architecture: a, capacity: max(1, decodeBatch)) : nil
        let eps = FloatBuffer(count: max(k, 1) * latent)
        let sampleIds = UnsafeMutablePointer<Int32>.allocate(capacity: max(k, 1))
        defer { sampleIds.deallocate() }
        for i in 0..<max(k, 1) { sampleIds[i] = Int32(truncatingIfNeeded: i) }
        var logWeights = [Double](repeating: 0, count: enc.capacity * max(k, 1))
        let elboKey = GaussianNoise.key(seed: seed, stream: AnalysisNoise.evalELBO, counter: 0)
        var sums = EvaluationSums()

        var start = 0
        while start < shard.count {
            let rows = min(enc.capacity, shard.count - start)
            for r in 0..<rows { shard.fill(enc, row: r, local: start + r, architecture: a) }
            model.encode(params, enc, rows: rows)

            // Negative ELBO: z into the decoder input (labels are already there), KL in float64.
            if posteriorMean {
                enc.eps.base.update(repeating: 0, count: rows * latent)
            } else {
                GaussianNoise.fill(enc.eps.base, rows: rows, dim: latent, ids: enc.ids, key: elboKey)
            }
            for r in 0..<rows {
                let h = enc.heads.base + r * 2 * latent
                let e = enc.eps.base + r * latent
                let z = enc.decoderInput.base + r * a.decoderInputWidth
                var kl = 0.0
                for j in 0..<latent {
                    let mean = h[j], logvar = h[latent + j]
                    z[j] = posteriorMean ? mean : mean + expf(logvar).squareRoot() * e[j]
                    let m = Double(mean), lv = Double(logvar)
                    kl += -0.5 * (1 + lv - m * m - exp(lv))
                }
                sums.kl += kl
            }
            model.decode(params, enc, rows: rows)
            for r in 0..<rows {
                sums.bce += bce64(logits: enc.logits.base + r * dim, targets: enc.encoderInput.base + r * a.encoderInputWidth, count: dim)
            }

            // Importance sampling: K decoder rows per record, in blocks of the decode workspace.
            if let dec, k > 0 {
                var pending = 0                  // rows filled in the decode workspace
                var owners: [(record: Int, first: Int, rows: Int, slot: Int)] = []
                func flush() {
                    guard pending > 0 else { return }
                    model.decode(params, dec, rows: pending)
                    for o in owners {
                        let targets = enc.encoderInput.base + o.record * a.encoderInputWidth
                        _ = BinaryCrossEntropy.evaluate(logits: dec.logits.base + o.first * dim, targets: targets, targetStride: 0,
                                                        rows: o.rows, width: dim, gradientScale: nil,
                                                        rowLoss: dec.rowBCE.base + o.first)
                        for s in 0..<o.rows { logWeights[o.record * k + o.slot + s] -= Double(dec.rowBCE.base[o.first + s]) }
                    }
                    owners.removeAll(keepingCapacity: true)
                    pending = 0
                }
                for r in 0..<rows {
                    let id = UInt64(UInt32(bitPattern: enc.ids[r]))
                    GaussianNoise.fill(eps.base, rows: k, dim: latent, ids: sampleIds,
                                       key: GaussianNoise.key(seed: seed, stream: AnalysisNoise.importance, counter: id))
                    let h = enc.heads.base + r * 2 * latent
                    let label = Int(enc.labels[r])
                    var s = 0
                    while s < k {
                        if pending == dec.capacity { flush() }
                        let n = min(k - s, dec.capacity - pending)
                        owners.append((record: r, first: pending, rows: n, slot: s))
                        for t in 0..<n {
                            let e = eps.base + (s + t) * latent
                            let z = dec.decoderInput.base + (pending + t) * a.decoderInputWidth
                            // log p(z) - log q(z|x); the (d/2) log 2 pi terms cancel.
                            var lw = 0.0
                            for j in 0..<latent {
                                let mean = h[j], logvar = h[latent + j]
                                let zj = mean + expf(logvar).squareRoot() * e[j]
                                z[j] = zj
                                let ej = Double(e[j])
                                lw += -0.5 * Double(zj) * Double(zj) + 0.5 * (ej * ej + Double(logvar))
                            }
                            logWeights[r * k + s + t] = lw
                            dec.setLabel(row: pending + t, label: label, architecture: a)
                        }
                        pending += n
                        s += n
                    }
                }
                flush()
                let logK = log(Double(k))
                for r in 0..<rows {
                    var m = -Double.infinity
                    for s in 0..<k { m = max(m, logWeights[r * k + s]) }
                    var total = 0.0
                    for s in 0..<k { total += exp(logWeights[r * k + s] - m) }
                    sums.nllIW += -(m + log(total) - logK)
                }
            }
            sums.count += rows
            start += rows
        }
        return sums
    }

    /// BCE of sigmoid(logits) against targets summed over `count` pixels, in float64:
    /// max(l, 0) - l x + log(1 + e^-|l|) per pixel.
    @inline(__always)
    static func bce64(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        for p in 0..<count {
            let l = Double(logits[p]), x = Double(targets[p])
            total += max(l, 0) - l * x + log1p(exp(-abs(l)))
        }
        return total
    }
}

// MARK: - Normal quantiles

/// The standard normal distribution's CDF and its inverse, in float64.
public enum NormalQuantile {
    /// Phi(x) = P(Z <= x) = erfc(-x / sqrt 2) / 2 (accurate in the lower tail too).
    public static func cdf(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// The inverse CDF (the "ppf"): the x with Phi(x) = p, for p in (0, 1); -inf at 0, +inf at 1,
    /// NaN outside [0, 1]. A rational starting guess in t = sqrt(-2 log p) (absolute error
    /// below 5e-4), then Halley steps on Phi(x) - p with erfc until the step is below 1e-15:
    /// accurate to about 1e-14 over the whole range.
    public static func ppf(_ p: Double) -> Double {
        guard p >= 0, p <= 1 else { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        // Work in the lower half; 1 - p is exact for p >= 0.5.
        if p > 0.5 { return -ppf(1 - p) }
        if p == 0.5 { return 0 }
        let t = (-2 * log(p)).squareRoot()
        var x = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1 + t * (1.432788 + t * (0.189269 + t * 0.001308))))
        let sqrt2pi = (2 * Double.pi).squareRoot()
        for _ in 0..<8 {
            // Halley: u = (Phi(x) - p) / phi(x); x -= u / (1 + x u / 2).
            let u = (cdf(x) - p) * sqrt2pi * exp(0.5 * x * x)
            let step = u / (1 + 0.5 * x * u)
            x -= step
            if abs(step) <= 1e-15 * max(1, abs(x)) { break }
        }
        return x
    }

    /// ppf of `n` evenly spaced probabilities from `low` to `high` (numpy's linspace, ends included).
    public static func grid(n: Int, low: Double, high: Double) -> [Double] {
        if n <= 0 { return [] }
        if n == 1 { return [ppf(low)] }
        return (0..<n).map { ppf(low + (high - low) * Double($0) / Double(n - 1)) }
    }
}
