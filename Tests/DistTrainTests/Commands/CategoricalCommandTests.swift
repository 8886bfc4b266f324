import Foundation
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO
import IOTestSupport
#if canImport(Glibc)
import Glibc
#endif

// The checkpoint commands on a categorical (Gumbel-softmax) latent: eval's exact likelihood
// and NMI, generate's one row per category, reconstruct's argmax category, and the refusals of
// style and manifold. Two models: a briefly trained unconditional one (as configs/gumbel-vae.json),
// and a constructed one whose encoder puts every digit y into category y mod 5, so the
// clustering and the KL are known in closed form.

// MARK: - Fixtures

extension CommandFixtures {
    /// Unconditional categorical latent over 10 categories, 30 steps.
    static let gumbel = train("gumbel") {
        $0.model.latentKind = .categorical
        $0.model.latent = 10
        $0.model.conditioning = .none
    }
}

/// A categorical model built by hand (conditioning both, K = 5 categories): the first encoder
/// layer copies the one-hot label into hidden units 0-9 and ignores the pixels, and the heads
/// give category c the logit `strength` when y mod 5 == c, else 0. The decoder keeps a random
/// initialization. So q(c|x, y) puts e^s / (e^s + 4) on y mod 5 and 1 / (e^s + 4) elsewhere.
enum ConstructedCategorical {
    static let categories = 5
    static let strength: Float = 10
    static let architecture = VAEArchitecture(inputDim: 784, classes: 10, encoderHidden: [10], decoderHidden: [16], latent: categories,
                                              activation: .relu, conditioning: .both, latentKind: .categorical)

    /// The category the encoder picks for label `y`.
    static func category(_ y: Int) -> Int { y % categories }

    /// Writes DIR/model.safetensors and returns DIR.
    static func write(in scratch: CommandScratch) throws -> String {
        let model = VAE(architecture)
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 11)
        let first = model.encoder.layers[0] as! Linear, heads = model.heads!
        params.base.advanced(by: first.weightOffset).update(repeating: 0, count: first.inFeatures * first.outFeatures)
        params.base.advanced(by: first.biasOffset).update(repeating: 0, count: first.outFeatures)
        for y in 0..<10 { params.base[first.weightOffset + y * first.inFeatures + 784 + y] = 1 }
        params.base.advanced(by: heads.weightOffset).update(repeating: 0, count: heads.inFeatures * heads.outFeatures)
        params.base.advanced(by: heads.biasOffset).update(repeating: 0, count: heads.outFeatures)
        for y in 0..<10 { params.base[heads.weightOffset + category(y) * heads.inFeatures + y] = strength }
        let dir = scratch.file("constructed")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Checkpoint.writeModel(model, params: params.base, to: dir + "/model.safetensors")
        return dir
    }
}

/// The 28x28 cell (row, col) of a grid PNG with 2-pixel padding.
func gridCell(_ img: PNGImage, row: Int, col: Int) -> [UInt8] {
    var out: [UInt8] = []
    for y in 0..<28 { for x in 0..<28 { out.append(img.pixels[(2 + row * 30 + y) * img.width + 2 + col * 30 + x]) } }
    return out
}

/// Probabilities in [0, 1] as the grid writes them.
func gray(_ v: ArraySlice<Float>) -> [UInt8] { v.map { UInt8((min(max($0, 0), 1) * 255).rounded()) } }

/// Largest per-pixel difference.
func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int { zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0 }

/// Entropy (nats) of the empirical distribution of `values`.
func entropy(_ values: [Int]) -> Double {
    let n = Double(values.count)
    return Dictionary(grouping: values, by: { $0 }).values.reduce(0.0) { h, group in
        let p = Double(group.count) / n
        return h - p * log(p)
    }
}

// MARK: - Tests

@Suite("checkpoint commands on a categorical latent")
struct CategoricalCommandTests {
    let data = CommandFixtures.mnist

    @Test("ClusterTally: argmax with ties, counts, and the same NMI as Clustering.nmi")
    func tally() {
        let logits: [Float] = [0.5, 2, 2, -1]
        #expect(logits.withUnsafeBufferPointer { ClusterTally.argmax($0.baseAddress!, count: 4) } == 1)
        var t = ClusterTally(clusters: 3, classes: 2)
        let predicted = [0, 0, 1, 1, 2, 2, 2], truth = [0, 0, 0, 1, 1, 1, 0]
        for (p, y) in zip(predicted, truth) {
            var row: [Float] = [0, 0, 0]
            row[p] = 3
            row.withUnsafeBufferPointer { t.add(logits: $0.baseAddress!, label: y) }
        }
        #expect(t.total == 7 && t.counts == [2, 0, 1, 1, 1, 2])
        #expect(abs(t.nmi - Clustering.nmi(predicted: predicted, truth: truth)) < 1e-12)
    }

    @Test("eval on the constructed model: NMI, KL and the exact likelihood in closed form")
    func evalConstructed() throws {
        let s = try CommandScratch()
        let ckpt = try ConstructedCategorical.write(in: s)
        let n = 400
        let j = try CommandCLI.json(CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "\(n)", "--data-dir", data]))
        for key in ["loss", "bce", "kl", "nll", "nmi", "categories", "latent_kind", "nll_iw"] { #expect(j[key] != nil, "missing \(key)") }
        #expect(j["latent_kind"] == .string("categorical") && j["nll_iw"] == .null)
        #expect(try CommandCLI.number(j, "categories") == 5 && CommandCLI.number(j, "iw_samples") == 0)

        // NMI of c = y mod 5 against y: I(c; y) = H(c), so NMI = 2 H(c) / (H(c) + H(y)).
        let labels = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<n }.labels.map(Int.init)
        let hc = entropy(labels.map(ConstructedCategorical.category)), hy = entropy(labels)
        let nmi = try CommandCLI.number(j, "nmi")
        #expect(abs(nmi - 2 * hc / (hc + hy)) < 1e-12, "nmi \(nmi), expected \(2 * hc / (hc + hy))")
        #expect(nmi > 0.5 && nmi < 1)

        // Every image has the same q: KL(q || uniform) in closed form.
        let e = exp(Double(ConstructedCategorical.strength))
        let q1 = e / (e + 4), q0 = 1 / (e + 4)
        let kl = log(5.0) + q1 * log(q1) + 4 * q0 * log(q0)
        #expect(abs(try CommandCLI.number(j, "kl") - kl) < 1e-6)

        // bce and nll from the decoded categories, recomputed here from the pixel probabilities.
        let trained = try TrainedModel(checkpoint: ckpt)
        let runner = ModelRunner(model: trained.model, params: trained.params.base)
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<n }
        var bce = 0.0, nll = 0.0, bceMode = 0.0
        for i in 0..<n {
            let x = ModelRunner.pixels(shard, local: i)
            let probs = runner.decodeCategories(Array(0..<5), labels: Array(repeating: labels[i], count: 5))
            let perCategory = (0..<5).map { c in
                (0..<784).reduce(0.0) { sum, p in
                    let pr = min(max(Double(probs[c * 784 + p]), 1e-7), 1 - 1e-7), t = Double(x[p])
                    return sum - (t * log(pr) + (1 - t) * log(1 - pr))
                }
            }
            let mode = ConstructedCategorical.category(labels[i])
            bce += (0..<5).reduce(0.0) { $0 + ($1 == mode ? q1 : q0) * perCategory[$1] }
            bceMode += perCategory[mode]
            let m = perCategory.map { -$0 }.max()!
            nll += log(5.0) - (m + log(perCategory.reduce(0.0) { $0 + exp(-$1 - m) }))
        }
        #expect(abs(try CommandCLI.number(j, "bce") - bce / Double(n)) < 1e-3 * bce / Double(n))
        #expect(abs(try CommandCLI.number(j, "nll") - nll / Double(n)) < 1e-3 * nll / Double(n))
        let loss = try CommandCLI.number(j, "loss")
        #expect(abs(loss - (try CommandCLI.number(j, "bce") + kl)) < 1e-6 * loss)
        #expect(try CommandCLI.number(j, "nll") <= loss, "exact NLL above the negative ELBO")

        // --posterior-mean decodes the argmax category; the KL does not change.
        let mode = try CommandCLI.json(CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "\(n)", "--posterior-mean", "--data-dir", data]))
        #expect(abs(try CommandCLI.number(mode, "bce") - bceMode / Double(n)) < 1e-3 * bceMode / Double(n))
        #expect(try CommandCLI.number(mode, "kl") == CommandCLI.number(j, "kl"))
    }

    @Test("eval on a trained categorical model: nmi matches the argmax of the encoder's logits; exact NLL below the ELBO")
    func evalTrained() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.gumbel)
        let n = 300
        let r = try CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "\(n)", "--data-dir", data])
        let j = try CommandCLI.json(r)
        let trained = try TrainedModel(checkpoint: ckpt)
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<n }
        let logits = try ModelRunner(model: trained.model, params: trained.params.base).encodedHeads(shard, locals: Array(0..<n))
        let predicted = (0..<n).map { i in (0..<10).max { logits[i * 10 + $0] < logits[i * 10 + $1] }! }
        let expected = Clustering.nmi(predicted: predicted, truth: shard.labels.map(Int.init))
        #expect(abs(try CommandCLI.number(j, "nmi") - expected) < 1e-12)
        let loss = try CommandCLI.number(j, "loss"), nll = try CommandCLI.number(j, "nll")
        #expect(loss.isFinite && nll.isFinite && nll > 0 && nll <= loss)
        // Nothing is sampled: another seed gives the same numbers.
        let other = try CommandCLI.json(CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "\(n)", "--seed", "9", "--data-dir", data]))
        for key in ["loss", "nll", "nmi"] { #expect(other[key] == j[key], "\(key)") }
    }

    @Test("the trainer's test loss of a categorical model is the exact negative ELBO (no relaxed sample), and its NMI the argmax one")
    func trainerTestLossIsExact() throws {
        let run = try CommandFixtures.gumbel.get()
        let trained = try TrainedModel(checkpoint: try CommandFixtures.checkpoint(CommandFixtures.gumbel))
        var config = Support.smallConfig(out: run + "-evaluate")
        config.model.latentKind = .categorical
        config.model.latent = 10
        config.model.conditioning = .none
        config.training.tauStart = 10
        config.training.tauMin = 0.5
        config.training.tauDecay = 1e-2
        var options = TrainOptions()
        options.printEpochs = false
        let trainer = try Trainer(config: config, comm: Support.world, options: options, logger: CommandFixtures.quiet)
        trainer.params.base.update(from: trained.params.base, count: trainer.params.count)
        // Decoding a relaxed sample (at tau 10 at step 0) would give a different, noisy figure.
        let hot = trainer.evaluate()
        let exact = CategoricalEvaluation.run(model: trainer.model, params: trainer.params.base, shard: trainer.test, posteriorMean: false)
        #expect(abs(hot.bce - exact.sums.bce) <= 1e-9 * exact.sums.bce && abs(hot.kl - exact.sums.kl) <= 1e-9 * max(exact.sums.kl, 1))
        #expect(trainer.lastTestNMI == exact.tally.nmi)
    }

    @Test("eval of a categorical model under mpirun -n 2 agrees with one rank")
    func evalMPI() throws {
        let mpirun = try TestProcess.mpirun()  // no MPI launcher is a failure, not a pass
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.gumbel)
        let args = ["eval", "--checkpoint", ckpt, "--count", "101", "--data-dir", data, "--threads", "1"]
        let single = try CommandCLI.json(CommandCLI.ok(args))
        let r = try CommandCLI.run(["-n", "2", "--oversubscribe", "--bind-to", "none", CommandCLI.binary()] + args, executable: mpirun)
        try #require(r.status == 0, r.summary)
        let two = try CommandCLI.json(r)
        #expect(try CommandCLI.number(two, "world_size") == 2)
        #expect(two["nmi"] == single["nmi"])
        for key in ["loss", "bce", "kl", "nll"] {
            let x = try CommandCLI.number(single, key), y = try CommandCLI.number(two, key)
            #expect(abs(x - y) <= 1e-6 * abs(x), "\(key): 1 rank \(x), 2 ranks \(y)")
        }
    }

    @Test("generate: one row per category, --label picks a category, out of range is refused")
    func generate() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.gumbel)
        let s = try CommandScratch()
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--out", s.file("all.png")])
        try CommandCLI.expectPNG(s.file("all.png"), width: gridSide(1), height: gridSide(10))
        // Row c is category c decoded.
        let trained = try TrainedModel(checkpoint: ckpt)
        let runner = ModelRunner(model: trained.model, params: trained.params.base)
        let img = try PNG.read(path: s.file("all.png"))
        for c in [0, 4, 9] {
            let expected = gray(runner.decode(z: ModelRunner.oneHot([c], width: 10), labels: [0])[...])
            #expect(maxDifference(gridCell(img, row: c, col: 0), expected) <= 1, "row \(c)")
        }
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--label", "4", "--out", s.file("four.png")])
        try CommandCLI.expectPNG(s.file("four.png"), width: gridSide(1), height: gridSide(1))
        #expect(gridCell(try PNG.read(path: s.file("four.png")), row: 0, col: 0) == gridCell(img, row: 4, col: 0))
        let r = try CommandCLI.run(["generate", "--checkpoint", ckpt, "--label", "10", "--out", s.file("x.png")])
        CommandCLI.expectFailure(r, mentions: "category 10 is out of range")
        #expect(!FileManager.default.fileExists(atPath: s.file("x.png")))
    }

    @Test("generate with a label-conditioned decoder: rows are categories, columns labels")
    func generateConditional() throws {
        let s = try CommandScratch()
        let ckpt = try ConstructedCategorical.write(in: s)
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--out", s.file("g.png")])
        try CommandCLI.expectPNG(s.file("g.png"), width: gridSide(10), height: gridSide(5))
        let trained = try TrainedModel(checkpoint: ckpt)
        let expected = gray(ModelRunner(model: trained.model, params: trained.params.base).decodeCategories([3], labels: [7])[...])
        #expect(maxDifference(gridCell(try PNG.read(path: s.file("g.png")), row: 3, col: 7), expected) <= 1)
    }

    @Test("the trainer's label grid of a categorical model: column c is category c")
    func labelGrid() throws {
        let trained = try TrainedModel(checkpoint: CommandFixtures.checkpoint(CommandFixtures.gumbel))
        let cells = Generator(model: trained.model, params: trained.params.base).labelGrid(cols: 12, seed: 5)
        let runner = ModelRunner(model: trained.model, params: trained.params.base)
        for col in [0, 3, 11] {
            let expected = runner.decode(z: ModelRunner.oneHot([col % 10], width: 10), labels: [0])
            let got = cells[(2 * 12 + col) * 784..<((2 * 12 + col + 1) * 784)]
            #expect(zip(got, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "column \(col)")
        }
    }

    @Test("reconstruct decodes the most likely category")
    func reconstruct() throws {
        let s = try CommandScratch()
        let ckpt = try ConstructedCategorical.write(in: s)
        try CommandCLI.ok(["reconstruct", "--checkpoint", ckpt, "--count", "6", "--out", s.file("r.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("r.png"), width: gridSide(6), height: gridSide(2))
        let img = try PNG.read(path: s.file("r.png"))
        let labels = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<6 }.labels.map(Int.init)
        let trained = try TrainedModel(checkpoint: ckpt)
        let runner = ModelRunner(model: trained.model, params: trained.params.base)
        for i in 0..<6 {
            let expected = gray(runner.decodeCategories([ConstructedCategorical.category(labels[i])], labels: [labels[i]])[...])
            #expect(maxDifference(gridCell(img, row: 1, col: i), expected) <= 1, "reconstruction \(i) (label \(labels[i]))")
        }
        // The trained unconditional model reconstructs too.
        try CommandCLI.ok(["reconstruct", "--checkpoint", CommandFixtures.checkpoint(CommandFixtures.gumbel), "--count", "20",
                           "--out", s.file("t.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("t.png"), width: gridSide(10), height: gridSide(4))
    }

    @Test("style: refused without a label-conditioned decoder, done with one")
    func style() throws {
        let s = try CommandScratch()
        let gumbel = try CommandFixtures.checkpoint(CommandFixtures.gumbel)
        let r = try CommandCLI.run(["style", "--checkpoint", gumbel, "--test-index", "3", "--out", s.file("x.png"), "--data-dir", data])
        CommandCLI.expectFailure(r, mentions: "needs a model whose decoder sees the label")
        #expect(!FileManager.default.fileExists(atPath: s.file("x.png")))
        let ckpt = try ConstructedCategorical.write(in: s)
        try CommandCLI.ok(["style", "--checkpoint", ckpt, "--test-index", "3", "--out", s.file("s.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("s.png"), width: gridSide(11), height: gridSide(1))
    }

    @Test("manifold: refused for a categorical latent and for a Gaussian latent that is not 2-D, nothing written")
    func manifold() throws {
        let s = try CommandScratch()
        let r = try CommandCLI.run(["manifold", "--checkpoint", CommandFixtures.checkpoint(CommandFixtures.gumbel),
                                    "--out", s.file("m.png"), "--scatter", s.file("m.svg"), "--data-dir", data])
        CommandCLI.expectFailure(r, mentions: "needs a Gaussian latent")
        #expect(r.stderr.contains("categorical"))
        let gaussian = try CommandCLI.run(["manifold", "--checkpoint", CommandFixtures.checkpoint(CommandFixtures.cvae), "--out", s.file("m.png")])
        CommandCLI.expectFailure(gaussian, mentions: "2-dimensional latent")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.path).isEmpty)
    }

    @Test("ModelRunner.posteriorMeans refuses a categorical latent; codes are one-hot argmax rows")
    func codes() throws {
        let trained = try TrainedModel(checkpoint: CommandFixtures.checkpoint(CommandFixtures.gumbel))
        let runner = ModelRunner(model: trained.model, params: trained.params.base)
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<20 }
        #expect(throws: AnalysisError.self) { try runner.posteriorMeans(shard, locals: [0]) }
        let codes = try runner.codes(shard, locals: Array(0..<20))
        let logits = try runner.encodedHeads(shard, locals: Array(0..<20))
        for i in 0..<20 {
            let row = codes[(i * 10)..<((i + 1) * 10)]
            let best = (0..<10).max { logits[i * 10 + $0] < logits[i * 10 + $1] }!
            #expect(row.reduce(0, +) == 1 && row[i * 10 + best] == 1, "record \(i)")
        }
    }
}
