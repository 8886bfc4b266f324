import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

// Post-training analysis of a checkpoint: loading it on its own, sampling, style transfer,
// reconstructions, latent codes and the test-set likelihood. Used by the `generate`, `style`,
// `reconstruct`, `eval` and `manifold` subcommands, and callable from the trainer.

/// The test-set likelihood of a trained model.
///
/// - Negative ELBO per record: BCE(x, sigmoid(decoder([z | y]))) summed over pixels plus
///   KL(N(mean, exp(logvar)) || N(0, I)), with z = mean + exp(logvar / 2) eps and one eps per
///   record keyed by (seed, record index); with `posteriorMean`, eps = 0 (z = mean), which is
///   deterministic. BCE and KL are accumulated in float64 from the float32 logits and heads.
/// - Importance-weighted NLL with K samples z_k = mean + std eps_k:
///   -log p(x) ~= -(logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K), with
///   log p(x|z) = -BCE (Bernoulli decoder; for reconstruction "mse" the Gaussian decoder
///   N(sigmoid(logits), 1/2) the squared error implies: -(squared error + (D/2) log pi), a
///   density, see `gaussianConstant`) and q the diagonal Gaussian posterior. For a
///   conditional model every density is conditioned on the label: this estimates -log p(x|y).
///   It is a stochastic upper bound of -log p(x) that tightens as K grows (for K = 1 it is the
///   sampled negative ELBO).
public enum Evaluation {
    /// Evaluates every record of `shard` (record ids are global, so the noise, and hence the
    /// result, does not depend on how the test set is split over ranks). A categorical latent
    /// is evaluated exactly instead (`CategoricalEvaluation.run`; `samples` and `seed` unused).
    public static func run(model: VAE, params: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>? = nil,
                           shard: DatasetShard, samples: Int,
                           posteriorMean: Bool, seed: UInt64, batch: Int = 250, decodeBatch: Int = 1000,
                           binarize: UInt64? = nil) -> EvaluationSums {
        let a = model.architecture
        if a.latentKind == .categorical {
            return CategoricalEvaluation.run(model: model, params: params, state: state, shard: shard, posteriorMean: posteriorMean,
                                             batch: batch, decodeBatch: decodeBatch, binarize: binarize).sums
        }
        if a.latentKind == .vectorQuantized {
            return QuantizedEvaluation.run(model: model, params: params, state: state, shard: shard, batch: batch).sums
        }
        let latent = a.latent, dim = a.inputDim
        let k = max(samples, 0)
        // Records per encoder pass; the log-weights of one pass stay below 4M doubles.
        let records = max(1, min(batch, shard.count, 4_000_000 / max(k, 1)))
        let enc = VAEWorkspace(model: model, capacity: records)
        let dec = k > 0 ? VAEWorkspace(model: model, capacity: max(1, decodeBatch)) : nil
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
            for r in 0..<rows { shard.fill(enc, row: r, local: start + r, architecture: a, binarize: binarize) }
            model.encode(params, enc, rows: rows, state: state)

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
            model.decode(params, enc, rows: rows, state: state)
            for r in 0..<rows {
                let logits = enc.logits.base + r * dim, targets = enc.encoderInput.base + r * a.encoderInputWidth
                // The reconstruction term of the model's own loss (`bce` names it whichever it is).
                sums.bce += a.reconstruction == .mse ? squaredError64(logits: logits, targets: targets, count: dim)
                                                     : bce64(logits: logits, targets: targets, count: dim)
            }

            // Importance sampling: K decoder rows per record, in blocks of the decode workspace.
            if let dec, k > 0 {
                var pending = 0                  // rows filled in the decode workspace
                var owners: [(record: Int, first: Int, rows: Int, slot: Int)] = []
                func flush() {
                    guard pending > 0 else { return }
                    model.decode(params, dec, rows: pending, state: state)
                    for o in owners {
                        let targets = enc.encoderInput.base + o.record * a.encoderInputWidth
                        if a.reconstruction == .mse {
                            // Gaussian decoder N(sigmoid(l), 1/2): -log p(x|z) = squared error + (D/2) log pi.
                            for s in 0..<o.rows {
                                let nll = squaredError64(logits: dec.logits.base + (o.first + s) * dim, targets: targets, count: dim)
                                    + gaussianConstant(pixels: dim)
                                logWeights[o.record * k + o.slot + s] -= nll
                            }
                            continue
                        }
                        _ = ElementwiseLoss.evaluate(.bce, logits: dec.logits.base + o.first * dim, targets: targets,
                                                     targetStride: 0, rows: o.rows, width: dim, gradientScale: nil,
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

    /// The normalizing constant of the Gaussian decoder an "mse" model implies: its loss
    /// sum (x - mu)^2 is -log N(x; mu, sigma^2 = 1/2) = (x - mu)^2 + (1/2) log(pi) per pixel,
    /// minus that constant, so log p(x|z) = -(squared error + (D/2) log pi) (a density).
    static func gaussianConstant(pixels: Int) -> Double { 0.5 * Double(pixels) * log(Double.pi) }

    /// Sum over pixels of (sigmoid(logit) - target)^2 in float64 (reconstruction "mse").
    static func squaredError64(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        for p in 0..<count {
            let d = 1 / (1 + exp(-Double(logits[p]))) - Double(targets[p])
            total += d * d
        }
        return total
    }

    /// BCE of sigmoid(logits) against targets summed over `count` pixels, in float64:
    /// max(l, 0) - l x + log(1 + e^-|l|) per pixel.
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
