import DistTrainIO
import Foundation
import Logging
import Models
import Testing
@testable import DistTrain

/// Issue 17 (bad input, round two): the pieces behind each fix, in one process.
@Suite struct BadInputTests {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    // MARK: 2. float-to-integer conversions

    @Test func plotsAndConsoleTakeAnyFiniteValue() {
        for v in [1.4e20, -1.4e20, 9.3e18, 1e300, -Double.greatestFiniteMagnitude, Double.greatestFiniteMagnitude, 5e-324] {
            #expect(!PlotText.number(v, decimals: 1).isEmpty)
            #expect(!fmt(v).isEmpty)
            #expect(!fmt(v, 0).isEmpty)
        }
        #expect(PlotText.number(1.4e20, decimals: 1) == "1.4e+20")
        #expect(PlotText.number(12.25, decimals: 1) == "12.3" || PlotText.number(12.25, decimals: 1) == "12.2")
        #expect(fmt(1234.5, 0) == "1235" || fmt(1234.5, 0) == "1234")
        let records: [[Double]] = [[1, 544.8, 1.4e20], [2, 1e300, -1e300], [3, Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude]]
        for (e, train, test) in records.map({ ($0[0], $0[1], $0[2]) }) {
            let metrics: [JSON] = [.object([("epoch", .number(e)), ("train_loss", .number(train)), ("test_loss", .number(test))])]
            #expect(LearningCurves.svg(metrics: metrics).hasSuffix("</svg>\n"))
        }
        let axis = PlotAxis(covering: -Double.greatestFiniteMagnitude, Double.greatestFiniteMagnitude)
        let finite = axis.ticks.allSatisfy { $0.isFinite }
        #expect(finite)
        let scatter = LatentScatter.raster(points: [3e38, -3e38, 0, 1], labels: [0, 1])
        #expect(scatter.pixels.count == scatter.width * scatter.height * 3)
    }

    @Test func trainerStateRefusesNumbersPast2to53() throws {
        var s = TrainerState()
        s.globalStep = 5
        guard case var .object(pairs) = s.json else { Issue.record("not an object"); return }
        pairs = pairs.map { $0.0 == "global_step" ? ($0.0, .number(1e300)) : $0 }
        #expect(throws: CheckpointError.self) { try TrainerState(json: .object(pairs), path: "x") }
    }

    // MARK: 5. memory estimate

    @Test func memoryEstimateAndLimits() throws {
        let seed = VAEArchitecture()
        #expect(MemoryBudget.parameterCount(seed) == Double(VAE(seed).trainableCount))
        let gumbel = VAEArchitecture(encoderHidden: [400], decoderHidden: [300, 200], latent: 10, conditioning: .none, latentKind: .categorical)
        #expect(MemoryBudget.parameterCount(gumbel) == Double(VAE(gumbel).trainableCount))
        try MemoryBudget.check(seed, rows: 500, training: true, ranksOnHost: 1, what: "seed")
        let huge = VAEArchitecture(encoderHidden: [100_000, 100_000])
        #expect(throws: MemoryBudget.TooLarge.self) { try MemoryBudget.check(huge, rows: 256, training: true, ranksOnHost: 1, what: "huge") }
        let deep = VAEArchitecture(encoderHidden: [Int](repeating: 8, count: 5000))
        #expect(throws: MemoryBudget.TooManyLayers.self) { try MemoryBudget.check(deep, rows: 1, training: false, ranksOnHost: 1, what: "deep") }
        #expect(MemoryBudget.availableBytes(ranksOnHost: 2) > 0)
    }

    @Test("the memory estimate counts every config's parameters exactly, conv and BatchNorm stacks included, and refuses a huge conv stack")
    func memoryEstimateOfLayerStacks() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Support.root + "/configs").filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.contains("conv-vae.json") && files.contains("cvae-bn-dropout.json"))
        for file in files {
            let arch = try TrainConfig.load(path: Support.root + "/configs/" + file).architecture(rows: 28, cols: 28)
            #expect(MemoryBudget.parameterCount(arch) == Double(VAE(arch).trainableCount), "\(file)")
            try MemoryBudget.check(arch, rows: 512, training: true, ranksOnHost: 1, what: file)
        }
        // 4096 channels of 28x28 after the first 3x3 convolution, unfolded 9 times for the second:
        // about 50 GB of workspace for 256 rows (the MLP-only estimate let this through).
        let huge = VAEArchitecture(inputShape: TensorShape(1, 28, 28), encoder: [.conv2d(out: 4096, kernel: 3, padding: 1), .relu,
                                   .conv2d(out: 1024, kernel: 3, padding: 1), .flatten], decoder: [.linear(out: 784)], latent: 8)
        #expect(MemoryBudget.neededBytes(huge, rows: 256, training: true) > 4e10)
        #expect(throws: MemoryBudget.TooLarge.self) { try MemoryBudget.check(huge, rows: 256, training: true, ranksOnHost: 1, what: "huge") }
    }

    // MARK: 9. changed world size or global batch mid-epoch

    @Test func midEpochChanges() {
        var saved = TrainerState()
        saved.worldSize = 1
        saved.globalBatch = 256
        var fresh = saved
        saved.stepInEpoch = 30
        #expect(saved.midEpochChange(to: fresh) == nil)
        fresh.globalBatch = 128
        #expect(saved.midEpochChange(to: fresh) == "by 1 rank with global batch 256; this run has 1 rank with global batch 128")
        fresh.globalBatch = 256
        fresh.worldSize = 2
        #expect(saved.midEpochChange(to: fresh) != nil)
        saved.stepInEpoch = 0
        #expect(saved.midEpochChange(to: fresh) == nil)  // at an epoch boundary nothing changes
        var old = TrainerState()  // a checkpoint from before global_batch was recorded
        old.stepInEpoch = 3
        fresh.worldSize = 1
        #expect(old.midEpochChange(to: fresh) == nil)
    }

    // MARK: 10. temporaries of a killed writer

    @Test func staleTemporariesRemoved() throws {
        #expect(RunDirectory.isAtomicTemporary("latest.tmp-123-1fa"))
        #expect(RunDirectory.isAtomicTemporary("epoch-001.png.tmp-9-0"))
        #expect(!RunDirectory.isAtomicTemporary("notes.tmp-mine"))
        #expect(!RunDirectory.isAtomicTemporary(".tmp-1-2"))
        #expect(!RunDirectory.isAtomicTemporary("step-00000030"))
        let dir = NSTemporaryDirectory() + "disttrain-stale-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = RunDirectory(dir)
        try run.prepare()
        try FileManager.default.createDirectory(atPath: run.checkpoints + "/step-00000001", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: run.checkpoints + "/.incomplete-step-00000002", withIntermediateDirectories: true)
        let stale = [run.metrics + ".tmp-1-a", run.checkpoints + "/latest.tmp-22-bc", run.grids + "/epoch-001.png.tmp-3-d",
                     run.checkpoints + "/step-00000001/trainer.json.tmp-4-e"]
        for f in stale + [dir + "/keep.tmp-x", run.checkpoints + "/step-00000001/model.safetensors"] {
            try AtomicFile.write([1], to: f)
        }
        let removed = run.removeStaleTemporaries()
        #expect(Set(removed) == Set(stale + [run.checkpoints + "/.incomplete-step-00000002"]))
        #expect(FileManager.default.fileExists(atPath: dir + "/keep.tmp-x"))
        #expect(FileManager.default.fileExists(atPath: run.checkpoints + "/step-00000001/model.safetensors"))
    }

    /// Pruning a `step-*` that is a symbolic link removes the link, not the files it points at.
    @Test func removeTreeDoesNotFollowLinks() throws {
        let dir = NSTemporaryDirectory() + "disttrain-links-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try AtomicFile.write([1], to: dir + "/elsewhere/precious")
        try FileManager.default.createSymbolicLink(atPath: dir + "/step-00000001", withDestinationPath: dir + "/elsewhere")
        RunDirectory.removeTree(dir + "/step-00000001")
        #expect(FileManager.default.fileExists(atPath: dir + "/elsewhere/precious"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/step-00000001")) == nil)
    }

    // MARK: 11. control characters in paths

    @Test func controlCharactersRefused() throws {
        var c = TrainConfig()
        c.output.dir = "j/u\u{0}x"
        #expect(throws: PathCheck.ControlCharacter(field: "output.dir", path: "j/u\u{0}x", character: 0)) { try c.checkPaths() }
        c.output.dir = "runs/ok"
        c.data.testLabels = "a\nb"
        #expect(throws: PathCheck.ControlCharacter.self) { try c.checkPaths() }
        let message = PathCheck.ControlCharacter(field: "f", path: "a\u{0}b\u{7F}", character: 0).description
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(message.contains("\"a\\u{0000}b\\u{007F}\""))
    }

    // MARK: 12. exact evaluation of many categories

    @Test func categoricalBudget() {
        #expect(CategoricalBudget.images(categories: 10, total: 10_000) == 10_000)
        #expect(CategoricalBudget.images(categories: 64, total: 10_000) == 1562)
        #expect(CategoricalBudget.images(categories: 256, total: 10_000) == 390)
        #expect(CategoricalBudget.images(categories: 4096, total: 10_000) == 24)
        #expect(CategoricalBudget.images(categories: 1 << 20, total: 10_000) == 10)
        #expect(CategoricalBudget.images(categories: 4096, total: 50) == 24)
        #expect(CategoricalBudget.images(categories: 4096, total: 5) == 5)
        // Ranks with contiguous shards evaluate exactly the first `images` records between them.
        for world in 1...4 {
            let total = 10_000, images = 2500
            let sum = (0..<world).map { r in
                CategoricalBudget.localLimit(images: images, firstIndex: total * r / world, count: total * (r + 1) / world - total * r / world)
            }.reduce(0, +)
            #expect(sum == images)
        }
    }

    // MARK: 4 and 8. ranks that were given different arguments

    @Test func ranksMustAgreeOnHowToStart() throws {
        let dir = NSTemporaryDirectory() + "disttrain-agree-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = Support.smallConfig(out: dir)
        do {
            try LocalCommunicator.run(ranks: 2) { comm in
                var options = TrainOptions()
                options.resume = comm.rank == 0
                options.printEpochs = false
                _ = try Trainer(config: config, comm: comm, options: options, logger: BadInputTests.quiet)
            }
            Issue.record("ranks with different starting points trained together")
        } catch let e as SharedFailure {
            #expect(e.message == "ranks disagree on how to start: starting point: rank 1 has a fresh start, rank 0 has --resume; start every rank with the same arguments")
        }
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test func agreeNamesTheFirstDifference() throws {
        try LocalCommunicator.run(ranks: 3) { comm in
            try comm.agree(on: [("a", "1"), ("b", "2")], what: "the same things")
            do {
                try comm.agree(on: [("a", "1"), ("b", comm.rank == 2 ? "3" : "2")], what: "x")
                Issue.record("no disagreement found")
            } catch let e as SharedFailure {
                #expect(e.message == "ranks disagree on x: b: rank 2 has 3, rank 0 has 2; start every rank with the same arguments")
            }
        }
    }
}
