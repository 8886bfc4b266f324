import Foundation
import Logging
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO
import IOTestSupport
#if canImport(Glibc)
import Glibc
#endif

// The checkpoint commands (generate, style, reconstruct, eval, manifold), the plots, and the
// variant configs. Tiny checkpoints are trained in-process once per test process on the small
// MNIST subset; the commands then run as the real `disttrain` executable (built next to the
// test bundle: `swift build --build-tests`), on the vendored MNIST test set.

// MARK: - Fixtures

/// Tiny checkpoints, trained at most once per process.
enum CommandFixtures {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A private directory for this process's fixtures, removed at exit.
    static let root: String = {
        let dir = NSTemporaryDirectory() + "disttrain-cmd-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "disttrain-cmd-\(getpid())") }
        return dir
    }()

    /// Trains `configure(smallConfig)` for 30 steps and returns the run directory.
    static func train(_ name: String, _ configure: (inout TrainConfig) -> Void) -> Result<String, any Error> {
        Result {
            let out = root + "/" + name
            var config = Support.smallConfig(out: out)
            config.training.maxSteps = 30
            config.output.gridEvery = 0
            configure(&config)
            var options = TrainOptions()
            options.printEpochs = false
            let trainer = try Trainer(config: config, comm: Support.world, options: options, logger: quiet)
            try trainer.fit()
            return out
        }
    }

    /// CVAE (conditioning both), latent 4.
    static let cvae = train("cvae") { _ in }
    /// CVAE with a 2-D latent space.
    static let cvae2d = train("cvae2d") { $0.model.latent = 2 }
    /// Unconditional VAE with a 2-D latent space.
    static let vae2d = train("vae2d") { $0.model.latent = 2; $0.model.conditioning = .none }
    /// CVAE trained with the squared-error reconstruction (model.reconstruction "mse").
    static let mse = train("mse") { $0.model.reconstruction = .mse }

    /// The newest checkpoint directory of a fixture run.
    static func checkpoint(_ run: Result<String, any Error>) throws -> String {
        let dir = try run.get()
        let latest = try #require(RunDirectory(dir).pointer("latest"), "fixture run \(dir) wrote no checkpoint")
        return dir + "/checkpoints/" + latest
    }

    static let mnist = Support.root + "/data/mnist"
}

/// A fresh temporary directory, removed when the value goes away.
final class CommandScratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "disttrain-cmdtest-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

// MARK: - Running the executable

struct MissingField: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// One run of a program (IOTestSupport's TestProcess).
typealias CommandRun = ProcessResult

enum CommandCLI {
    static let packageRoot = Support.root

    /// The `disttrain` executable next to the test bundle (or $DISTTRAIN_BIN).
    static func binary() throws -> String { try TestProcess.disttrain() }

    /// Runs `executable arguments` (default: disttrain) in the package root; killed after `timeout` s.
    static func run(_ arguments: [String], executable: String? = nil, timeout: Double = 180,
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandRun {
        let exe = try executable ?? binary()
        return try TestProcess.run(exe, arguments, timeout: timeout, name: executable == nil ? "disttrain" : nil,
                                   sourceLocation: sourceLocation)
    }

    /// Runs and requires success.
    @discardableResult
    static func ok(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandRun {
        let r = try run(arguments)
        try #require(r.status == 0, r.summary, sourceLocation: sourceLocation)
        return r
    }

    /// A clean failure: non-zero exit, exactly one "disttrain: error: " line mentioning `mentions`.
    static func expectFailure(_ r: CommandRun, mentions: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, r.summary, sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr must be one line\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("disttrain: error: "), r.summary, sourceLocation: sourceLocation)
        #expect(r.stderr.contains(mentions), "error should mention \"\(mentions)\"\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
    }

    /// Decodes the PNG at `path` and checks its size.
    static func expectPNG(_ path: String, width: Int, height: Int, channels: Int = 1,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let img = try PNG.read(path: path)
        #expect(img.width == width && img.height == height && img.channels == channels,
                "\(path): \(img.width)x\(img.height)x\(img.channels), expected \(width)x\(height)x\(channels)",
                sourceLocation: sourceLocation)
    }

    /// The single JSON object that `eval` printed.
    static func json(_ r: CommandRun, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        let lines = r.stdout.split(separator: "\n")
        try #require(lines.count == 1, "eval must print one line\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
        return try JSON.parse(String(lines[0]))
    }

    static func number(_ j: JSON, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
        guard case let .number(v)? = j[key] else {
            throw MissingField(message: "\"\(key)\" missing or not a number in \(j.serialized)")
        }
        return v
    }
}

/// Pixel size of an ImageGrid of 28x28 cells with 2-pixel padding.
func gridSide(_ cells: Int) -> Int { 30 * cells + 2 }

// MARK: - Tests

@Suite("checkpoint commands: generate, style, reconstruct, eval, manifold")
struct CommandTests {
    let data = CommandFixtures.mnist

    // MARK: Pure functions

    @Test("inverse normal CDF matches known quantiles to 1e-9 and inverts the CDF")
    func normalQuantiles() {
        let known: [(Double, Double)] = [
            (0.05, -1.6448536269514722), (0.975, 1.959963984540054), (0.5, 0), (0.95, 1.6448536269514722),
            (0.001, -3.090232306167813), (0.8413447460685429, 1.0), (1e-10, -6.361340902404056), (0.25, -0.6744897501960817),
        ]
        for (p, x) in known {
            #expect(abs(NormalQuantile.ppf(p) - x) < 1e-9, "ppf(\(p)) = \(NormalQuantile.ppf(p)), expected \(x)")
        }
        var previous = -Double.infinity
        for i in 1..<1000 {
            let p = Double(i) / 1000
            let x = NormalQuantile.ppf(p)
            #expect(x > previous)
            #expect(abs(NormalQuantile.cdf(x) - p) < 1e-12)
            #expect(abs(x + NormalQuantile.ppf(1 - p)) < 1e-9)
            previous = x
        }
        #expect(NormalQuantile.ppf(0) == -.infinity && NormalQuantile.ppf(1) == .infinity && NormalQuantile.ppf(1.5).isNaN)
        let grid = NormalQuantile.grid(n: 15, low: 0.05, high: 0.95)
        #expect(grid.count == 15 && abs(grid[0] + 1.6448536269514722) < 1e-9 && abs(grid[7]) < 1e-12 && abs(grid[14] - 1.6448536269514722) < 1e-9)
    }

    @Test("nice axes: ticks cover the range at 1, 2 or 5 times a power of ten")
    func axes() {
        let a = PlotAxis(covering: -3.2, 4.1, target: 8)
        #expect(a.low <= -3.2 && a.high >= 4.1 && a.ticks.first == a.low && a.ticks.last == a.high)
        #expect(a.ticks == [-4, -3, -2, -1, 0, 1, 2, 3, 4, 5])
        let b = PlotAxis(covering: 88.2, 94.7, target: 6)
        #expect(b.ticks.count >= 4 && b.ticks.count <= 10 && b.low <= 88.2 && b.high >= 94.7)
        let epochs = PlotAxis(covering: 1, 1, integer: true)
        #expect(epochs.low < 1 && epochs.high > 1 && epochs.decimals == 0)
        #expect(PlotText.number(-0.04, decimals: 1) == "0.0" && PlotText.number(2.25, decimals: 1) == "2.3" && PlotText.number(-1.5, decimals: 0) == "-2")
    }

    @Test("learning curves SVG: a polyline per series, axes, legend; write() skips a broken last line")
    func learningCurves() throws {
        let metrics: [JSON] = (1...6).map { e in
            .object([("epoch", .number(Double(e))), ("train_loss", .number(200 / Double(e) + 90)), ("test_loss", .number(150 / Double(e) + 92))])
        }
        let svg = LearningCurves.svg(metrics: metrics)
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 2)
        #expect(svg.contains("id=\"train_loss\"") && svg.contains("id=\"test_loss\""))
        #expect(svg.contains(">epoch</text>") && svg.contains("Learning curves"))
        // Six points per series.
        for line in svg.split(separator: "\n") where line.hasPrefix("<polyline") {
            let points = line.split(separator: "\"").dropFirst().first { $0.contains(",") }.map { $0.split(separator: " ").count }
            #expect(points == 6)
        }
        let scratch = try CommandScratch()
        var text = metrics.map(\.serialized).joined(separator: "\n") + "\n"
        text += metrics[2].serialized + "\n{\"epoch\": 7, \"train_lo"   // a resumed epoch 3, a torn last line
        try AtomicFile.write(Array(text.utf8), to: scratch.file("metrics.jsonl"))
        try LearningCurves.write(metricsPath: scratch.file("metrics.jsonl"), to: scratch.file("curves.svg"))
        let written = try FileBytes.readString(scratch.file("curves.svg"))
        #expect(written == svg)
        // No data yet: still a valid document with both series.
        let empty = LearningCurves.svg(metrics: [])
        #expect(empty.hasPrefix("<svg") && empty.components(separatedBy: "<polyline").count - 1 == 2)
    }

    @Test("writeReconstructionGrid: pairs of rows, up to 10 columns")
    func reconstructionGridFunction() throws {
        let trained = try TrainedModel(checkpoint: CommandFixtures.checkpoint(CommandFixtures.cvae))
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<12 }
        let scratch = try CommandScratch()
        try writeReconstructionGrid(model: trained.model, params: trained.params.base, shard: shard, count: 12, to: scratch.file("r.png"))
        try CommandCLI.expectPNG(scratch.file("r.png"), width: gridSide(10), height: gridSide(4))
        try writeReconstructionGrid(model: trained.model, params: trained.params.base, shard: shard, count: 3, to: scratch.file("s.png"))
        try CommandCLI.expectPNG(scratch.file("s.png"), width: gridSide(3), height: gridSide(2))
    }

    @Test("checkpoint arguments: directory, model file, pointer file, checkpoints dir, run dir")
    func checkpointResolution() throws {
        let run = try CommandFixtures.cvae.get()
        let dir = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let file = dir + "/model.safetensors"
        for arg in [dir, file, run + "/checkpoints/latest", run + "/checkpoints", run] {
            #expect(try TrainedModel.resolve(arg) == file, "\(arg)")
        }
        #expect(throws: CheckpointError.self) { try TrainedModel.resolve(run + "/no-such") }
        let loaded = try TrainedModel(checkpoint: run)
        #expect(loaded.architecture.latent == 4 && loaded.architecture.conditioning == .both)
    }

    // MARK: generate

    @Test("generate: N samples of a label in a grid, repeatable from the seed")
    func generate() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let s = try CommandScratch()
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--label", "5", "--count", "23", "--out", s.file("a.png")])
        try CommandCLI.expectPNG(s.file("a.png"), width: gridSide(10), height: gridSide(3))
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--label", "5", "--count", "23", "--out", s.file("b.png")])
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--label", "5", "--count", "23", "--seed", "1", "--out", s.file("c.png")])
        let a = try FileBytes.read(s.file("a.png")), b = try FileBytes.read(s.file("b.png")), c = try FileBytes.read(s.file("c.png"))
        #expect(a == b, "same seed, different images")
        #expect(a != c, "different seeds, same images")
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--label", "2", "--count", "4", "--cols", "3", "--out", s.file("sub/d.png")])
        try CommandCLI.expectPNG(s.file("sub/d.png"), width: gridSide(3), height: gridSide(2))
    }

    @Test("generate --label all: the trainer's label grid")
    func generateAll() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let s = try CommandScratch()
        try CommandCLI.ok(["generate", "--checkpoint", ckpt, "--label", "all", "--cols", "7", "--out", s.file("all.png")])
        try CommandCLI.expectPNG(s.file("all.png"), width: gridSide(7), height: gridSide(10))
        // Identical to what the trainer draws (Generator.labelGrid with the same seed).
        let trained = try TrainedModel(checkpoint: ckpt)
        let cells = Generator(model: trained.model, params: trained.params.base).labelGrid(cols: 7, seed: 0)
        try ImageGrid(rows: 10, cols: 7).writePNG(cells, to: s.file("ref.png"))
        #expect(try FileBytes.read(s.file("all.png")) == FileBytes.read(s.file("ref.png")))
    }

    @Test("generate: label checks; an unconditional model ignores --label with a note")
    func generateLabels() throws {
        let cvae = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let vae = try CommandFixtures.checkpoint(CommandFixtures.vae2d)
        let s = try CommandScratch()
        CommandCLI.expectFailure(try CommandCLI.run(["generate", "--checkpoint", cvae, "--count", "3", "--out", s.file("x.png")]), mentions: "--label")
        CommandCLI.expectFailure(try CommandCLI.run(["generate", "--checkpoint", cvae, "--label", "12", "--out", s.file("x.png")]), mentions: "out of range")
        #expect(!FileManager.default.fileExists(atPath: s.file("x.png")))
        let r = try CommandCLI.ok(["generate", "--checkpoint", vae, "--label", "3", "--count", "12", "--out", s.file("v.png")])
        #expect(r.stderr.contains("note") && r.stderr.contains("unconditional"))
        try CommandCLI.expectPNG(s.file("v.png"), width: gridSide(10), height: gridSide(2))
        try CommandCLI.ok(["generate", "--checkpoint", vae, "--count", "5", "--out", s.file("w.png")])
        try CommandCLI.expectPNG(s.file("w.png"), width: gridSide(5), height: gridSide(1))
        CommandCLI.expectFailure(try CommandCLI.run(["generate", "--checkpoint", s.file("none"), "--label", "1", "--out", s.file("y.png")]), mentions: "not found")
    }

    // MARK: style

    @Test("style --test-index: one row, the original then labels 0-9")
    func styleTestIndex() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let s = try CommandScratch()
        try CommandCLI.ok(["style", "--checkpoint", ckpt, "--test-index", "48", "--out", s.file("s.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("s.png"), width: gridSide(11), height: gridSide(1))
        // The original is test image 48 itself, pixel for pixel.
        let img = try PNG.read(path: s.file("s.png"))
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 48..<49 }
        var same = true
        for y in 0..<28 { for x in 0..<28 where img.pixels[(2 + y) * img.width + 2 + x] != shard.pixels[y * 28 + x] { same = false } }
        #expect(same, "the first cell is not test image 48")
        CommandCLI.expectFailure(try CommandCLI.run(["style", "--checkpoint", ckpt, "--test-index", "10000", "--out", s.file("t.png"), "--data-dir", data]),
                                 mentions: "out of range")
    }

    @Test("style --from-label: originals on top, then one row per label")
    func styleFromLabel() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let s = try CommandScratch()
        try CommandCLI.ok(["style", "--checkpoint", ckpt, "--from-label", "7", "--count", "4", "--out", s.file("s.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("s.png"), width: gridSide(4), height: gridSide(11))
        // Top-left cell: the first 7 of the training set.
        let labels = try IDX.readLabels(path: MNISTFiles(dir: data).trainLabels, classes: 10).labels
        let first = try #require(labels.firstIndex(of: 7))
        let shard = try MNISTFiles(dir: data).train(classes: 10) { _ in first..<(first + 1) }
        let img = try PNG.read(path: s.file("s.png"))
        var same = true
        for y in 0..<28 { for x in 0..<28 where img.pixels[(2 + y) * img.width + 2 + x] != shard.pixels[y * 28 + x] { same = false } }
        #expect(same, "the top-left cell is not the first 7 of the training set")
        CommandCLI.expectFailure(try CommandCLI.run(["style", "--checkpoint", ckpt, "--out", s.file("t.png")]), mentions: "--test-index")
    }

    @Test("style needs a conditional decoder")
    func styleUnconditional() throws {
        let vae = try CommandFixtures.checkpoint(CommandFixtures.vae2d)
        let s = try CommandScratch()
        CommandCLI.expectFailure(try CommandCLI.run(["style", "--checkpoint", vae, "--test-index", "1", "--out", s.file("s.png"), "--data-dir", data]),
                                 mentions: "unconditional")
    }

    // MARK: reconstruct

    @Test("reconstruct: pairs of rows, originals above reconstructions")
    func reconstruct() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let s = try CommandScratch()
        try CommandCLI.ok(["reconstruct", "--checkpoint", ckpt, "--count", "13", "--cols", "5", "--out", s.file("r.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("r.png"), width: gridSide(5), height: gridSide(6))
        try CommandCLI.ok(["reconstruct", "--checkpoint", ckpt, "--count", "20", "--out", s.file("d.png"), "--data-dir", data])
        try CommandCLI.expectPNG(s.file("d.png"), width: gridSide(10), height: gridSide(4))
        // Row 0 holds test images 0..4; row 1 their reconstructions.
        let img = try PNG.read(path: s.file("r.png"))
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<5 }
        var same = true
        for i in 0..<5 { for y in 0..<28 { for x in 0..<28 where img.pixels[(2 + y) * img.width + 2 + i * 30 + x] != shard.pixels[i * 784 + y * 28 + x] { same = false } } }
        #expect(same, "row 0 is not test images 0-4")
        CommandCLI.expectFailure(try CommandCLI.run(["reconstruct", "--checkpoint", ckpt, "--count", "10001", "--out", s.file("x.png"), "--data-dir", data]),
                                 mentions: "--count")
    }

    // MARK: eval

    @Test("eval: one JSON object with finite numbers; the IW bound is below the ELBO bound")
    func eval() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let r = try CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "300", "--samples", "50", "--data-dir", data])
        let j = try CommandCLI.json(r)
        for key in ["checkpoint", "test_samples", "loss", "bce", "kl", "nll_iw", "iw_samples", "world_size", "seconds"] {
            #expect(j[key] != nil, "missing \(key)")
        }
        let loss = try CommandCLI.number(j, "loss"), bce = try CommandCLI.number(j, "bce"), kl = try CommandCLI.number(j, "kl")
        let nll = try CommandCLI.number(j, "nll_iw")
        for v in [loss, bce, kl, nll, try CommandCLI.number(j, "seconds")] { #expect(v.isFinite) }
        #expect(abs(loss - (bce + kl)) < 1e-9 * loss)
        #expect(loss > 50 && kl > 0)
        #expect(nll <= loss * 1.01, "nll_iw \(nll) vs loss \(loss)")
        #expect(nll > 0)
        #expect(try CommandCLI.number(j, "test_samples") == 300)
        #expect(try CommandCLI.number(j, "iw_samples") == 50)
        #expect(try CommandCLI.number(j, "world_size") == 1)
        #expect(j["checkpoint"] == .string(ckpt))
    }

    @Test("eval --posterior-mean is deterministic and matches the model's own forward pass")
    func evalPosteriorMean() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let args = ["eval", "--checkpoint", ckpt, "--count", "200", "--samples", "0", "--posterior-mean", "--data-dir", data]
        let a = try CommandCLI.json(CommandCLI.ok(args)), b = try CommandCLI.json(CommandCLI.ok(args))
        for key in ["loss", "bce", "kl"] { #expect(a[key] == b[key], "\(key) differs between two runs") }
        #expect(a["nll_iw"] == .null)
        // The same number from VAE.loss with eps = 0 (float32 sums): agrees to float precision.
        let trained = try TrainedModel(checkpoint: ckpt)
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<200 }
        let ws = VAEWorkspace(architecture: trained.architecture, capacity: 200)
        for r in 0..<200 { shard.fill(ws, row: r, local: r, architecture: trained.architecture) }
        ws.eps.zero()
        let l = trained.model.loss(trained.params.base, ws, rows: 200)
        let reference = (l.bce + l.kl) / 200
        let loss = try CommandCLI.number(a, "loss")
        #expect(abs(loss - reference) < 1e-4 * reference, "eval \(loss) vs forward pass \(reference)")
        // Sampling z changes the reconstruction term only: the KL is a function of the heads.
        let sampled = try CommandCLI.json(CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "200", "--samples", "0", "--data-dir", data]))
        #expect(try CommandCLI.number(sampled, "kl") == CommandCLI.number(a, "kl"))
        #expect(try CommandCLI.number(sampled, "bce") != CommandCLI.number(a, "bce"))
    }

    @Test("eval on an MSE model: bce is its squared error (the model's own forward pass), loss its training loss")
    func evalMSE() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.mse)
        let j = try CommandCLI.json(CommandCLI.ok(["eval", "--checkpoint", ckpt, "--count", "120", "--samples", "20",
                                                   "--posterior-mean", "--data-dir", data]))
        let trained = try TrainedModel(checkpoint: ckpt)
        #expect(trained.architecture.reconstruction == .mse)
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<120 }
        let ws = VAEWorkspace(architecture: trained.architecture, capacity: 120)
        for r in 0..<120 { shard.fill(ws, row: r, local: r, architecture: trained.architecture) }
        ws.eps.zero()
        let l = trained.model.loss(trained.params.base, ws, rows: 120)
        let bce = try CommandCLI.number(j, "bce"), kl = try CommandCLI.number(j, "kl"), loss = try CommandCLI.number(j, "loss")
        #expect(abs(bce - l.bce / 120) < 1e-4 * bce, "eval bce \(bce) vs the model's squared error \(l.bce / 120)")
        #expect(abs(kl - l.kl / 120) < 1e-4 * max(kl, 1))
        #expect(abs(loss - (bce + kl)) < 1e-9 * loss)
        // A squared error of [0, 1] values over 784 pixels is far below any BCE of MNIST.
        #expect(bce > 0 && bce < 100, "bce \(bce) is not a squared error")
        // nll_iw: a Gaussian density, (D/2) log pi above the squared error's scale; a K-sample bound.
        let nll = try CommandCLI.number(j, "nll_iw"), constant = 392 * log(Double.pi)
        #expect(nll < loss + constant + 5 && nll > loss + constant - 100, "nll_iw \(nll), loss \(loss)")
        #expect(j["binarize"] == .string("none"))
    }

    @Test("nll_iw of an MSE model uses the Gaussian decoder N(sigmoid(l), 1/2): K = 1 recomputed by hand")
    func mseLikelihood() throws {
        let trained = try TrainedModel(checkpoint: CommandFixtures.checkpoint(CommandFixtures.mse))
        let a = trained.architecture, p = trained.params.base
        let n = 6, seed: UInt64 = 4
        let shard = try MNISTFiles(dir: data).test(classes: 10) { _ in 0..<n }
        let sums = Evaluation.run(model: trained.model, params: p, shard: shard, samples: 1, posteriorMean: false, seed: seed)
        // By hand: z = mean + std eps (eps of the importance stream, sample 0), then
        // -log w = S + (D/2) log pi + |z|^2 / 2 - |eps|^2 / 2 - sum logvar / 2.
        let ws = VAEWorkspace(architecture: a, capacity: n)
        for r in 0..<n { shard.fill(ws, row: r, local: r, architecture: a) }
        trained.model.encode(p, ws, rows: n)
        var expected = 0.0
        var zero: Int32 = 0
        var eps = [Float](repeating: 0, count: a.latent)
        for r in 0..<n {
            let key = GaussianNoise.key(seed: seed, stream: AnalysisNoise.importance, counter: UInt64(r))
            GaussianNoise.fill(&eps, rows: 1, dim: a.latent, ids: &zero, key: key)
            var logPrior = 0.0
            for j in 0..<a.latent {
                let mean = ws.heads.base[r * 2 * a.latent + j], logvar = ws.heads.base[r * 2 * a.latent + a.latent + j]
                let z = mean + expf(logvar).squareRoot() * eps[j]
                ws.decoderInput.base[r * a.decoderInputWidth + j] = z
                logPrior += -0.5 * Double(z) * Double(z) + 0.5 * (Double(eps[j]) * Double(eps[j]) + Double(logvar))
            }
            expected -= logPrior
        }
        trained.model.decode(p, ws, rows: n)
        for r in 0..<n {
            for j in 0..<a.inputDim {
                let mu = 1 / (1 + exp(-Double(ws.logits.base[r * a.inputDim + j])))
                let d = mu - Double(ws.encoderInput.base[r * a.encoderInputWidth + j])
                expected += d * d
            }
            expected += 0.5 * Double(a.inputDim) * log(Double.pi)
        }
        #expect(abs(sums.nllIW - expected) < 1e-4 * abs(expected), "nll_iw sum \(sums.nllIW), by hand \(expected)")
    }

    @Test("in-process evaluation: sums do not depend on how the records are split")
    func evaluationSplit() throws {
        let trained = try TrainedModel(checkpoint: CommandFixtures.checkpoint(CommandFixtures.cvae))
        let files = MNISTFiles(dir: data)
        let whole = try files.test(classes: 10) { _ in 0..<60 }
        let first = try files.test(classes: 10) { _ in 0..<25 }, second = try files.test(classes: 10) { _ in 25..<60 }
        let p = trained.params.base
        let all = Evaluation.run(model: trained.model, params: p, shard: whole, samples: 7, posteriorMean: false, seed: 3, batch: 16, decodeBatch: 10)
        let a = Evaluation.run(model: trained.model, params: p, shard: first, samples: 7, posteriorMean: false, seed: 3, batch: 250, decodeBatch: 1000)
        let b = Evaluation.run(model: trained.model, params: p, shard: second, samples: 7, posteriorMean: false, seed: 3, batch: 7, decodeBatch: 3)
        #expect(all.count == 60 && a.count + b.count == 60)
        for (x, y) in zip(all.values, zip(a.values, b.values).map { $0 + $1 }) {
            #expect(abs(x - y) <= 1e-4 * max(abs(x), 1), "\(all.values) vs \(a.values) + \(b.values)")
        }
        // K = 1: the IW estimate is a sampled negative ELBO, close to the ELBO on average.
        let one = Evaluation.run(model: trained.model, params: p, shard: whole, samples: 1, posteriorMean: false, seed: 3)
        #expect(abs(one.nllIW - (one.bce + one.kl)) < 0.1 * (one.bce + one.kl))
        // More samples, tighter bound (on average over records).
        let many = Evaluation.run(model: trained.model, params: p, shard: whole, samples: 64, posteriorMean: false, seed: 3)
        #expect(many.nllIW < one.nllIW)
    }

    @Test("eval under mpirun -n 2: the same numbers, printed once")
    func evalMPI() throws {
        let mpirun = try TestProcess.mpirun()  // no MPI launcher is a failure, not a pass
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let args = ["eval", "--checkpoint", ckpt, "--count", "101", "--samples", "10", "--data-dir", data, "--threads", "1"]
        let single = try CommandCLI.json(CommandCLI.ok(args))
        let r = try CommandCLI.run(["-n", "2", "--oversubscribe", "--bind-to", "none", CommandCLI.binary()] + args, executable: mpirun)
        try #require(r.status == 0, r.summary)
        let two = try CommandCLI.json(r)
        #expect(try CommandCLI.number(two, "world_size") == 2)
        #expect(try CommandCLI.number(two, "test_samples") == 101)
        for key in ["loss", "bce", "kl", "nll_iw"] {
            let x = try CommandCLI.number(single, key), y = try CommandCLI.number(two, key)
            #expect(abs(x - y) <= 1e-5 * abs(x), "\(key): 1 rank \(x), 2 ranks \(y)")
        }
    }

    // MARK: manifold

    @Test("manifold: one grid per label for a CVAE, one for a VAE; scatter as SVG and PNG")
    func manifold() throws {
        let cvae = try CommandFixtures.checkpoint(CommandFixtures.cvae2d)
        let vae = try CommandFixtures.checkpoint(CommandFixtures.vae2d)
        let s = try CommandScratch()
        try CommandCLI.ok(["manifold", "--checkpoint", cvae, "--out", s.file("m.png"), "--n", "6"])
        for k in 0..<10 { try CommandCLI.expectPNG(s.file("m-label\(k).png"), width: gridSide(6), height: gridSide(6)) }
        #expect(!FileManager.default.fileExists(atPath: s.file("m.png")))
        try CommandCLI.ok(["manifold", "--checkpoint", cvae, "--out", s.file("one.png"), "--label", "3"])
        try CommandCLI.expectPNG(s.file("one.png"), width: gridSide(15), height: gridSide(15))
        try CommandCLI.ok(["manifold", "--checkpoint", vae, "--out", s.file("v.png"), "--n", "4",
                           "--scatter", s.file("v.svg"), "--count", "500", "--data-dir", data])
        try CommandCLI.expectPNG(s.file("v.png"), width: gridSide(4), height: gridSide(4))
        let svg = try FileBytes.readString(s.file("v.svg"))
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<circle").count - 1 >= 500 + 10)   // dots plus legend swatches
        for k in 0..<10 { #expect(svg.contains("id=\"label-\(k)\" fill=\"\(Palette.hex(k))\"")) }
        #expect(svg.contains(">z1</text>") && svg.contains(">z2</text>"))
        try CommandCLI.ok(["manifold", "--checkpoint", cvae, "--scatter", s.file("c.png"), "--count", "300", "--data-dir", data])
        try CommandCLI.expectPNG(s.file("c.png"), width: 680, height: 600, channels: 3)
        // Ten distinct colours all appear in the PNG.
        let img = try PNG.read(path: s.file("c.png"))
        var seen = Set<Int>()
        for i in stride(from: 0, to: img.pixels.count, by: 3) {
            let rgb = (Int(img.pixels[i]), Int(img.pixels[i + 1]), Int(img.pixels[i + 2]))
            if let k = Palette.rgb.firstIndex(where: { Int($0.0) == rgb.0 && Int($0.1) == rgb.1 && Int($0.2) == rgb.2 }) { seen.insert(k) }
        }
        #expect(seen.count == 10, "legend colours found: \(seen.sorted())")
    }

    @Test("manifold: a clear one-line error for latent != 2, and for nothing to do")
    func manifoldErrors() throws {
        let ckpt = try CommandFixtures.checkpoint(CommandFixtures.cvae)
        let s = try CommandScratch()
        let r = try CommandCLI.run(["manifold", "--checkpoint", ckpt, "--out", s.file("m.png")])
        CommandCLI.expectFailure(r, mentions: "2-dimensional latent")
        #expect(r.stderr.contains("4 dimensions"))
        #expect(!FileManager.default.fileExists(atPath: s.file("m-label0.png")))
        CommandCLI.expectFailure(try CommandCLI.run(["manifold", "--checkpoint", ckpt]), mentions: "--out")
    }

    @Test("--help of every command explains the checkpoint argument and exits 0")
    func help() throws {
        for command in ["generate", "style", "reconstruct", "eval", "manifold"] {
            let r = try CommandCLI.run([command, "--help"])
            try #require(r.status == 0, r.summary)
            #expect(r.stdout.contains("OPTIONS:") && r.stdout.contains("--checkpoint <dir>") && r.stdout.contains("Checkpoint to load"), "\(command)")
        }
        let top = try CommandCLI.run(["--help"])
        #expect(top.status == 0 && top.stdout.contains("SUBCOMMANDS:") && top.stderr.isEmpty, top.summary)
    }
}

// MARK: - Variant configs

/// What each variant config in configs/ must say.
struct VariantExpectation: Sendable, CustomTestStringConvertible {
    var file: String
    var conditioning: Conditioning
    var encoderHidden: [Int]
    var latent: Int
    var activation: String
    var klWeight: Double
    var batch: Int
    var epochs: Int?
    var testDescription: String { file }
}

@Suite("variant configs load and train")
struct VariantConfigTests {
    static let variants: [VariantExpectation] = [
        .init(file: "vae-002.json", conditioning: .none, encoderHidden: [400], latent: 20, activation: "relu", klWeight: 1, batch: 128, epochs: 15),
        .init(file: "vae-001.json", conditioning: .none, encoderHidden: [400, 400], latent: 200, activation: "leaky_relu", klWeight: 1, batch: 100, epochs: 30),
        .init(file: "vae-003-2d.json", conditioning: .none, encoderHidden: [256], latent: 2, activation: "relu", klWeight: 1, batch: 128, epochs: nil),
        .init(file: "beta-vae.json", conditioning: .none, encoderHidden: [400], latent: 20, activation: "relu", klWeight: 10, batch: 128, epochs: 15),
        .init(file: "cvae-decoder-only.json", conditioning: .decoder, encoderHidden: [400], latent: 20, activation: "relu", klWeight: 1, batch: 128, epochs: 15),
        .init(file: "cvae-2d.json", conditioning: .both, encoderHidden: [512, 512], latent: 2, activation: "relu", klWeight: 1, batch: 256, epochs: nil),
    ]

    @Test("each variant config has the documented recipe", arguments: variants)
    func recipe(_ v: VariantExpectation) throws {
        let c = try TrainConfig.load(path: Support.root + "/configs/" + v.file)
        #expect(c.model.conditioning == v.conditioning)
        #expect(c.model.encoderHidden == v.encoderHidden && c.model.decoderHidden == v.encoderHidden)
        #expect(c.model.latent == v.latent && c.model.activation == v.activation)
        if v.activation == "leaky_relu" { #expect(c.model.leakySlope == 0.2) }
        #expect(c.training.klWeight == v.klWeight && c.training.globalBatch == v.batch)
        if let e = v.epochs { #expect(c.training.epochs == e) }
        #expect(c.output.dir == "runs/" + v.file.replacingOccurrences(of: ".json", with: ""))
    }

    @Test("iwae-vae.json is Burda et al. 2015's one-stochastic-layer VAE on dynamically binarized MNIST")
    func iwaeRecipe() throws {
        let c = try TrainConfig.load(path: Support.root + "/configs/iwae-vae.json")
        #expect(c.model.conditioning == .none && c.model.latent == 50 && c.model.reconstruction == .bce)
        #expect(c.model.encoder == [.linear(out: 200), .tanh, .linear(out: 200), .tanh])
        #expect(c.model.decoder == [.linear(out: 200), .tanh, .linear(out: 200), .tanh, .linear(out: 784)])
        #expect(c.data.binarize == .dynamic)
        // Their Adam: beta1 0.9, beta2 0.999, eps 1e-4, lr from 1e-3 down to 1e-4.
        #expect(c.optimizer.beta1 == 0.9 && c.optimizer.beta2 == 0.999 && c.optimizer.eps == 1e-4)
        #expect(c.optimizer.lr == 1e-3 && c.optimizer.minLR == 1e-4 && c.optimizer.schedule == .cosine)
        #expect(c.training.klWeight == 1 && c.output.dir == "runs/iwae-vae")
        let model = VAE(c.architecture(inputDim: 784))
        #expect(model.trainableCount == 425_284, "784-200-200-50 encoder heads and 50-200-200-784 decoder")
    }

    @Test("every config in configs/ loads and trains 3 steps on the small data", arguments: try! FileManager.default
            .contentsOfDirectory(atPath: Support.root + "/configs").filter { $0.hasSuffix(".json") }.sorted())
    func trains(_ file: String) throws {
        var c = try TrainConfig.load(path: Support.root + "/configs/" + file)
        let out = CommandFixtures.root + "/variant-" + file.replacingOccurrences(of: ".json", with: "")
        c.data.trainImages = Support.smallData + "/train-images"
        c.data.trainLabels = Support.smallData + "/train-labels"
        c.data.testImages = Support.smallData + "/t10k-images"
        c.data.testLabels = Support.smallData + "/t10k-labels"
        c.output.dir = out
        c.output.gridEvery = 0
        c.training.maxSteps = 3
        c.runtime.blasThreads = 1
        var options = TrainOptions()
        options.printEpochs = false
        let trainer = try Trainer(config: c, comm: Support.world, options: options, logger: CommandFixtures.quiet)
        try trainer.fit()
        #expect(trainer.state.globalStep == 3)
        let loss = try #require(trainer.reports.last).test
        #expect(loss.bce.isFinite && loss.kl.isFinite && loss.rows > 0)
        // The checkpoint it wrote loads back with the config's architecture.
        let loaded = try TrainedModel(checkpoint: out)
        #expect(loaded.architecture == c.architecture(rows: 28, cols: 28))
    }
}
