import DistTrainIO
import ArgumentParser
import DistTrain
import Models
#if canImport(Glibc)
import Glibc
#endif

/// `disttrain eval`: test-set negative ELBO and importance-weighted NLL of a checkpoint.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint on the test set: negative ELBO and importance-weighted NLL (exact NLL and NMI for a categorical latent; reconstruction, perplexity and codes used for a VQ-VAE), as one JSON object.",
        discussion: """
        Prints ONE JSON object on one line of stdout (rank 0 only), with the fields checkpoint \
        (the directory evaluated), latent_kind, test_samples (COUNT), loss, bce, kl, nll_iw, \
        iw_samples, binarize (the test pixels used), posterior_mean, world_size and seconds (plus nll, nmi and categories for a \
        categorical latent, below).

        Over the first COUNT test images (x = pixels / 255, y = the one-hot label; for a model \
        trained with data.binarize dynamic or static, or with --binarize, x is instead the one \
        fixed binarization of the test set that the trainer's test loss also uses: pixel j of \
        test image i is 1 with probability pixels / 255, drawn once from a key of (i, j) alone, \
        the same for every model and seed, the usual protocol for dynamically binarized MNIST), with \
        BCE(x, p) = -sum over pixels of [x log p + (1 - x) log(1 - p)], computed from the logits \
        l as max(l, 0) - l x + log(1 + exp(-|l|)), and the encoder's mean and logvar:

          bce  = mean over images of BCE(x, sigmoid(decoder([z | y])))
          kl   = mean over images of KL(N(mean, exp(logvar)) || N(0, I))
                 = -1/2 sum_j (1 + logvar_j - mean_j^2 - exp(logvar_j))
          loss = bce + kl   (the negative ELBO per image in nats, unweighted by training.kl_weight)

        For a model.reconstruction "mse" model, bce is its own reconstruction term instead, the \
        squared error S = sum over pixels of (x - sigmoid(l))^2, and loss = S + kl, its training loss.

        z = mean + exp(logvar / 2) eps with one eps ~ N(0, I) per image, keyed by (--seed, image \
        index), as in training. With --posterior-mean, z = mean (eps = 0): loss is then \
        deterministic and equals, exactly as another tool can recompute it, the mean over the \
        first COUNT test images of [sum over pixels of BCE(x, sigmoid(decoder([mean | onehot]))) \
        + KL(N(mean, exp(logvar)) || N(0, I))] (for conditioning none the decoder input is just \
        [mean]; for "decoder" the encoder sees only x). Per-image terms are accumulated in \
        float64 from the float32 network outputs.

          nll_iw = mean over images of -(logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K)

        with K = --samples draws z_k ~ q(z|x) = N(mean, diag exp(logvar)), log p(x|z) = -BCE \
        (Bernoulli decoder; for a model.reconstruction "mse" model, whose loss is the squared \
        error S = sum over pixels of (x - sigmoid(l))^2, the Gaussian decoder N(sigmoid(l), 1/2) \
        per pixel that S implies: log p(x|z) = -(S + (D/2) log pi), D pixels, so nll_iw is a \
        negative log DENSITY and sits about (D/2) log pi = 448.7 nats for MNIST above loss), p(z) = N(0, I), in float64, K decoder rows per image in batches. \
        For a CVAE every term is conditioned on y: it estimates -log p(x|y). In expectation it \
        lies between -log p(x) and the negative ELBO, and decreases towards -log p(x) as K grows. \
        --samples 0 skips it (nll_iw is null). iw_samples is K.

        A categorical latent (model.latent_kind "categorical", K categories, uniform prior, e.g. \
        configs/gumbel-vae.json) is evaluated EXACTLY, by decoding every category of every image: \
        with q = softmax(encoder logits) and BCE_c the BCE of the decoded one-hot category c,

          bce  = sum_c q_c BCE_c           (--posterior-mean: BCE of the argmax category)
          kl   = KL(q || uniform) = sum_c q_c log q_c + log K
          loss = bce + kl                  (the exact negative ELBO of the discrete model)
          nll  = -log p(x) = log K - logsumexp_c(-BCE_c)   (exact: p(x) = sum_c p(x|c) / K)
          nmi  = normalized mutual information (arithmetic mean of the entropies, as \
        scikit-learn's default) between the most likely category (argmax of the logits) and \
        the true label, over the COUNT images

        There nll_iw is null and iw_samples 0 (nothing is sampled; --samples and --seed are not \
        used), and the output adds nll, nmi and categories (K). Over the whole test set (K up \
        to 10; for larger K with --count floor(100000/K), the images the trainer evaluates), \
        loss and nmi are the trainer's test_loss and test_nmi of the same checkpoint. A long \
        exact evaluation reports its progress on stderr every 5 s.

        A VQ-VAE (model.latent_kind "vq", e.g. configs/vq-vae.json) is deterministic: every \
        position of the encoder's output takes its nearest code. bce is the reconstruction term \
        (BCE or squared error, as trained), kl the codebook + commitment loss \
        (1 + commitment) |z_e - z_q|^2 summed per image, loss their sum (the training objective \
        at kl_weight 1); nll_iw is null (no prior over the codes, no likelihood) and the output \
        adds perplexity (exp of the entropy of the code frequencies over the COUNT images, all \
        ranks), codes_used and codebook_size. Every output has latent_kind ("gaussian", \
        "categorical" or "vq").

        Under mpirun the first COUNT images are split into contiguous shards, one per rank, and \
        the sums are added across ranks; noise is keyed by image index, so the numbers do not \
        depend on the number of ranks (up to float64 summation order). world_size is the number \
        of ranks; seconds is the wall time of the whole command on rank 0.

          disttrain eval --checkpoint runs/cvae/checkpoints/best
          mpirun -n 2 disttrain eval --checkpoint runs/cvae --samples 1000
          disttrain eval --checkpoint runs/cvae/checkpoints/best --posterior-mean --count 256
        """
    )

    @OptionGroup var model: CheckpointOptions

    /// --samples when not given.
    static let defaultSamples = 100

    @Option(name: .long, help: "Importance samples K per test image for nll_iw (0: skip nll_iw). Not used for a categorical latent (its nll is exact).")
    var samples: Int = EvalCommand.defaultSamples

    @Option(name: .long, help: "Evaluate the first N test images (default: all of them).")
    var count: Int?

    @Flag(name: .customLong("posterior-mean"), help: "Use z = posterior mean (eps = 0) for loss, bce and kl: deterministic, reproducible by other tools.")
    var posteriorMean = false

    @Option(name: .long, help: "Seed of the ELBO noise and of the importance samples.")
    var seed: Int = 0

    @Option(name: .long, help: ArgumentHelp(
        "Test pixels: none (pixels / 255), or dynamic / static (both: the one fixed Bernoulli binarization of the test set the trainer evaluates on). Default: the checkpoint's data.binarize.",
        valueName: "none|dynamic|static"))
    var binarize: String?

    @OptionGroup var data: DataOptions

    @OptionGroup var blas: ThreadOptions

    func validate() throws {
        if samples < 0 || samples > 100_000 { throw ValidationError("--samples must be between 0 and 100000, got \(samples)") }
        if let c = count, c < 1 { throw ValidationError("--count must be at least 1, got \(c)") }
        if seed < 0 { throw ValidationError("--seed must be non-negative, got \(seed)") }
        if let b = binarize, Binarization(rawValue: b) == nil {
            throw ValidationError("--binarize must be none, dynamic or static, got \"\(b)\"")
        }
    }

    func run() throws {
        let started = Clock.now()
        let comm = CommunicatorFactory.world()
        RankThreads.set(ThreadPlan.threads(requested: blas.threads, ranksOnHost: comm.localSize))
        let rank = comm.rank, world = comm.size
        let trained = try comm.collectively { try model.load() }
        let a = trained.architecture
        let files = data.files
        let wanted = count
        var total = 0
        let shard = try comm.collectively {
            try files.test(classes: a.classes) { available in
                let n = wanted ?? available
                guard n <= available else {
                    throw AnalysisError.countTooLarge(what: "--count", count: n, available: available, path: files.testImages)
                }
                total = n
                return (n * rank / world)..<(n * (rank + 1) / world)
            }
        }
        try comm.collectively {
            guard shard.inputDim == a.inputDim else {
                throw AnalysisError.imageSize(path: files.testImages, pixels: shard.inputDim, modelPixels: a.inputDim)
            }
        }
        // The ranks add their sums into one result: they must evaluate the same model on the
        // same data the same way (compared by content, so paths may differ between hosts).
        let modelSum = String(Numerics.checksum(trained.params.base, count: trained.params.count), radix: 16)
        try comm.agree(on: [
            ("the model (--checkpoint)", "\(a.latentKind.rawValue), \(trained.params.count) parameters, checksum \(modelSum)"),
            ("the test data (--data-dir)", "hashes \(Fingerprint.hashFile(files.testImages) ?? "unreadable") \(Fingerprint.hashFile(files.testLabels) ?? "unreadable")"),
            ("--samples", String(samples)), ("--count", count.map(String.init) ?? "all"),
            ("--posterior-mean", String(posteriorMean)), ("--seed", String(seed)),
        ], what: "what to evaluate")
        let pixels = binarize.flatMap(Binarization.init(rawValue:)) ?? Binarization.ofCheckpoint(trained.metadata)
        let pixelKey = BernoulliPixels.testKey(pixels)
        let categorical = a.latentKind == .categorical
        let quantized = a.latentKind == .vectorQuantized
        var sums: EvaluationSums
        var tally: ClusterTally?
        var usage: CodebookUsage?
        if quantized {
            // Deterministic: nearest codes, no samples; the code counts are summed over ranks.
            let mine = QuantizedEvaluation.run(model: trained.model, params: trained.params.base, state: trained.state.base, shard: shard,
                                               binarize: pixelKey)
            sums = EvaluationSums(values: comm.sum(mine.sums.values))
            usage = CodebookUsage(counts: comm.sum(mine.counts))
        } else if categorical {
            // K decoder passes per image: long for large K, so rank 0 shows its progress.
            var lastShown = Clock.now()
            let isWriter = comm.isWriter
            let all = CategoricalEvaluation.run(model: trained.model, params: trained.params.base, state: trained.state.base, shard: shard,
                                                posteriorMean: posteriorMean, binarize: pixelKey) { done, total in
                guard isWriter, Clock.now() - lastShown >= 5 else { return }
                lastShown = Clock.now()
                AnalysisCLI.note("exact evaluation (\(a.latent) categories): \(done)/\(total) images of rank 0's share")
            }.summed(over: comm)
            sums = all.sums
            tally = all.tally
        } else {
            let mine = Evaluation.run(model: trained.model, params: trained.params.base, state: trained.state.base, shard: shard, samples: samples,
                                      posteriorMean: posteriorMean, seed: UInt64(seed), binarize: pixelKey)
            sums = EvaluationSums(values: comm.sum(mine.values))
        }
        guard comm.isWriter else { return }
        if quantized && samples != EvalCommand.defaultSamples {
            AnalysisCLI.note("--samples is not used for a VQ-VAE: it has no prior, hence no likelihood to estimate")
        }
        if categorical && samples != EvalCommand.defaultSamples {
            AnalysisCLI.note("--samples is not used for a categorical latent: nll is exact (every category is decoded)")
        }
        let n = Double(max(sums.count, 1))
        let dir = trained.path.hasSuffix("/model.safetensors") ? String(trained.path.dropLast("/model.safetensors".count)) : trained.path
        var fields: [(String, JSON)] = [
            ("checkpoint", .string(dir)),
            ("latent_kind", .string(a.latentKind.rawValue)),
            ("test_samples", .number(Double(total))),
            ("loss", .number((sums.bce + sums.kl) / n)),
            ("bce", .number(sums.bce / n)),
            ("kl", .number(sums.kl / n)),
            ("nll_iw", samples > 0 && !categorical && !quantized ? .number(sums.nllIW / n) : .null),
            ("iw_samples", .number(categorical || quantized ? 0 : Double(samples))),
            ("binarize", .string(pixels.rawValue)),
        ]
        if let usage {
            fields += [("perplexity", .number(usage.perplexity)), ("codes_used", .number(Double(usage.used))),
                       ("codebook_size", .number(Double(usage.size)))]
        }
        if let tally {
            fields += [("nll", .number(sums.nllIW / n)), ("nmi", .number(tally.nmi)), ("categories", .number(Double(a.latent)))]
        }
        fields += [
            ("posterior_mean", .bool(posteriorMean)),
            ("world_size", .number(Double(world))),
            ("seconds", .number(((Clock.now() - started) * 1000).rounded() / 1000)),
        ]
        print(JSON.object(fields).serialized)
        fflush(stdout)
    }
}
