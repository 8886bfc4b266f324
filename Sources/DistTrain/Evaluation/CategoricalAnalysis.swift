import Models
#if canImport(Glibc)
import Glibc
#endif

// Analysis of a model whose latent is one categorical variable c over K categories with a
// uniform prior (model.latent_kind "categorical", seed 002's Gumbel VAE). With K small every
// category can be decoded, so the test-set likelihood is exact instead of sampled, and
// generation needs no noise: each category decodes to one image.

/// What a categorical model's evaluation adds up over some records (add across ranks, then divide).
public struct CategoricalEvaluation: Equatable, Sendable {
    /// count, bce, kl and, in `nllIW`, the exact -log p(x): see `run`.
    public var sums: EvaluationSums
    /// Most likely category (argmax of the encoder's logits) against the true label.
    public var tally: ClusterTally

    /// Exact test-set terms of every record of `shard`, for a model with a categorical latent.
    ///
    /// With q = softmax(logits) the encoder's posterior over the K categories, and
    /// BCE_c = BCE(x, sigmoid(decoder([onehot(c) | y]))) summed over pixels (= -log p(x|c)),
    /// per record:
    ///
    /// - bce = sum_c q_c BCE_c (the expected reconstruction term), or with `posteriorMean`
    ///   BCE_argmax (the most likely category decoded, deterministic either way);
    /// - kl = KL(q || uniform) = sum_c q_c log q_c + log K;
    /// - nllIW = -log p(x) = log K - logsumexp_c(-BCE_c), exact: p(x) = sum_c p(c) p(x|c).
    ///
    /// Without `posteriorMean`, bce + kl is the exact negative ELBO of the discrete model and
    /// bce + kl - nllIW = KL(q(c|x) || p(c|x)) >= 0. No noise is drawn: the result does not
    /// depend on the seed or on how records are split over ranks. For a conditional model every
    /// term is conditioned on the label y (it gives -log p(x|y)).
    ///
    /// Only the shard's first `limit` records are evaluated when given (see
    /// `CategoricalBudget`); `progress` hears (records done, records to do) after each batch.
    public static func run(model: VAE, params: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>? = nil,
                           shard: DatasetShard, posteriorMean: Bool,
                           batch: Int = 250, decodeBatch: Int = 1000, limit: Int? = nil, binarize: UInt64? = nil,
                           progress: ((Int, Int) -> Void)? = nil) -> CategoricalEvaluation {
        let a = model.architecture
        precondition(a.latentKind == .categorical, "CategoricalEvaluation needs a categorical latent")
        let k = a.latent, dim = a.inputDim
        let enc = VAEWorkspace(model: model, capacity: max(1, min(batch, shard.count)))
        // Whole records per decoder pass: K rows each.
        let perPass = max(1, decodeBatch / k)
        let dec = VAEWorkspace(model: model, capacity: perPass * k)
        var bceByCategory = [Double](repeating: 0, count: enc.capacity * k)
        var result = CategoricalEvaluation(sums: EvaluationSums(), tally: ClusterTally(clusters: k, classes: a.classes))
        let logK = log(Double(k))

        let total = min(shard.count, max(0, limit ?? shard.count))
        var start = 0
        while start < total {
            let rows = min(enc.capacity, total - start)
            for r in 0..<rows { shard.fill(enc, row: r, local: start + r, architecture: a, binarize: binarize) }
            model.encode(params, enc, rows: rows, state: state)

            // BCE_c of every (record, category) pair, perPass records per decoder pass.
            var first = 0
            while first < rows {
                let n = min(perPass, rows - first)
                for i in 0..<n {
                    let label = Int(enc.labels[first + i])
                    for c in 0..<k {
                        let row = i * k + c
                        let y = dec.decoderInput.base + row * a.decoderInputWidth
                        y.update(repeating: 0, count: k)
                        y[c] = 1
                        dec.setLabel(row: row, label: label, architecture: a)
                    }
                }
                model.decode(params, dec, rows: n * k, state: state)
                for i in 0..<n {
                    let targets = enc.encoderInput.base + (first + i) * a.encoderInputWidth
                    for c in 0..<k {
                        bceByCategory[(first + i) * k + c] = Evaluation.bce64(logits: dec.logits.base + (i * k + c) * dim,
                                                                               targets: targets, count: dim)
                    }
                }
                first += n
            }

            for r in 0..<rows {
                let logits = enc.heads.base + r * k
                let best = ClusterTally.argmax(logits, count: k)
                result.tally.add(cluster: best, label: Int(enc.labels[r]))
                let bce = Array(bceByCategory[(r * k)..<((r + 1) * k)])
                let q = softmax(logits, count: k)
                var expected = 0.0, negEntropy = 0.0
                for c in 0..<k where q[c] > 0 {
                    expected += q[c] * bce[c]
                    negEntropy += q[c] * log(q[c])
                }
                result.sums.bce += posteriorMean ? bce[best] : expected
                result.sums.kl += max(0, negEntropy + logK)
                result.sums.nllIW += logK - logSumExp(bce.map { -$0 })
            }
            result.sums.count += rows
            start += rows
            progress?(start, total)
        }
        return result
    }

    /// The sums and the contingency table added up over every rank of `comm` (collective).
    public func summed(over comm: Communicator) -> CategoricalEvaluation {
        CategoricalEvaluation(sums: EvaluationSums(values: comm.sum(sums.values)),
                              tally: ClusterTally(clusters: tally.clusters, classes: tally.classes, counts: comm.sum(tally.counts)))
    }

    /// softmax of `count` float32 logits, in float64.
    static func softmax(_ logits: UnsafePointer<Float>, count: Int) -> [Double] {
        var m = -Double.infinity
        for j in 0..<count { m = max(m, Double(logits[j])) }
        var out = (0..<count).map { exp(Double(logits[$0]) - m) }
        let total = out.reduce(0, +)
        for j in 0..<count { out[j] /= total }
        return out
    }

    /// log sum_i exp(v_i), without overflow.
    static func logSumExp(_ v: [Double]) -> Double {
        guard let m = v.max(), m.isFinite else { return v.max() ?? -.infinity }
        return m + log(v.reduce(0) { $0 + exp($1 - m) })
    }
}

extension ModelRunner {
    /// Decoded images of categorical-latent codes: for each (category, label) pair, the
    /// decoder's pixel probabilities given [onehot(category) | onehot(label)] (the label is
    /// ignored by a decoder that does not see it). No noise: one image per pair.
    public func decodeCategories(_ categories: [Int], labels: [Int]) -> [Float] {
        let a = model.architecture
        precondition(a.latentKind == .categorical && categories.count == labels.count)
        return decode(z: ModelRunner.oneHot(categories, width: a.latent), labels: labels)
    }

    /// The category grid of a categorical model: one row per category in `categories`; one
    /// column per label 0..<classes when the decoder sees the label (row c, column y decodes
    /// [onehot(c) | onehot(y)]), else a single column. Row-major cells, and the column count.
    public func categoryGrid(categories: [Int]) -> (cells: [Float], cols: Int) {
        let a = model.architecture
        let cols = a.conditionsDecoder ? a.classes : 1
        var cs: [Int] = [], ls: [Int] = []
        for c in categories {
            for y in 0..<cols { cs.append(c); ls.append(y) }
        }
        return (decodeCategories(cs, labels: ls), cols)
    }
}
