import Foundation
import Logging
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// `data.binarize`: Bernoulli pixels keyed by (seed, epoch, global sample id, pixel).
@Suite struct BinarizationTests {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Test records `range` of the vendored MNIST.
    static func records(_ range: Range<Int>) throws -> DatasetShard {
        try MNISTFiles(dir: Support.root + "/data/mnist").test(classes: 10) { _ in range }
    }

    /// The pixels `fill` writes for the shard-local samples `locals`: [locals.count, 784].
    static func filled(_ shard: DatasetShard, locals: [Int], key: UInt64?) -> [Float] {
        let a = VAEArchitecture()
        let ws = VAEWorkspace(architecture: a, capacity: max(locals.count, 1))
        var out: [Float] = []
        for (r, l) in locals.enumerated() {
            shard.fill(ws, row: r, local: l, architecture: a, binarize: key)
            out += UnsafeBufferPointer(start: ws.encoderInput.base + r * a.encoderInputWidth, count: a.inputDim)
        }
        return out
    }

    /// Every rank binarizes its contiguous share of the first `count` test records into a
    /// [count, 784] buffer (zero elsewhere); the sum over ranks must be the one-process draws.
    static func shareAddsUp(comm: Communicator, count: Int, key: UInt64) throws -> (sum: [Float], reference: [Float]) {
        let mine = (count * comm.rank / comm.size)..<(count * (comm.rank + 1) / comm.size)
        let shard = try records(mine)
        var buffer = [Float](repeating: 0, count: count * 784)
        let drawn = filled(shard, locals: Array(0..<shard.count), key: key)
        buffer.replaceSubrange(mine.lowerBound * 784..<mine.upperBound * 784, with: drawn)
        buffer.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: $0.count) }
        let reference = filled(try records(0..<count), locals: Array(0..<count), key: key)
        return (buffer, reference)
    }

    @Test("a draw is 0 for a black pixel, 1 for a white one, and 1 at the rate intensity / 255 in between")
    func rates() {
        let rowKey = BernoulliPixels.rowKey(GaussianNoise.key(seed: 3, stream: BernoulliPixels.trainStream, counter: 0), id: 11)
        let n = 200_000
        #expect((0..<n).allSatisfy { BernoulliPixels.draw(intensity: 0, rowKey: rowKey, pixel: $0) == 0 })
        #expect((0..<n).allSatisfy { BernoulliPixels.draw(intensity: 255, rowKey: rowKey, pixel: $0) == 1 })
        for s in [1, 64, 128, 200, 254] as [UInt8] {
            let ones = (0..<n).reduce(0) { $0 + Int(BernoulliPixels.draw(intensity: s, rowKey: rowKey, pixel: $1)) }
            let p = Double(s) / 255, rate = Double(ones) / Double(n)
            let sigma = (p * (1 - p) / Double(n)).squareRoot()
            #expect(abs(rate - p) < 5 * sigma + 1e-9, "intensity \(s): rate \(rate), expected \(p)")
        }
    }

    @Test("a sample's draws depend on its global id, not on the shard or the batch slot that holds it")
    func globalIds() throws {
        let key = try #require(BernoulliPixels.trainKey(.dynamic, seed: 5, epoch: 2))
        let whole = try Self.records(0..<60), tail = try Self.records(40..<60)
        // Records 45 and 52 at other slots, from another shard.
        let a = Self.filled(whole, locals: [45, 3, 52], key: key)
        let b = Self.filled(tail, locals: [12, 5], key: key)
        #expect(Array(a[2 * 784..<3 * 784]) == Array(b[0..<784]))
        #expect(Array(a[0..<784]) == Array(b[784..<2 * 784]))
        #expect(a.allSatisfy { $0 == 0 || $0 == 1 })
        // Different images get different noise: record 3's draws are not record 45's pattern.
        #expect(Array(a[0..<784]) != Array(a[784..<2 * 784]))
    }

    @Test("dynamic redraws every epoch, static keeps epoch 0's draws, none is pixels / 255 bit for bit")
    func modes() throws {
        let shard = try Self.records(0..<8)
        let locals = Array(0..<8)
        func draws(_ mode: Binarization, epoch: Int, seed: UInt64 = 0) -> [Float] {
            Self.filled(shard, locals: locals, key: BernoulliPixels.trainKey(mode, seed: seed, epoch: epoch))
        }
        let d0 = draws(.dynamic, epoch: 0), d1 = draws(.dynamic, epoch: 1)
        #expect(d0 != d1)
        // Redrawn pixels are only the grey ones: where the image is 0 or 255 every epoch agrees.
        for i in d0.indices where shard.pixels[i] == 0 || shard.pixels[i] == 255 { #expect(d0[i] == d1[i]) }
        let flipped = zip(d0, d1).filter { $0 != $1 }.count
        #expect(flipped > 100, "only \(flipped) of 8 images' pixels changed between epochs")
        #expect(draws(.static, epoch: 0) == draws(.static, epoch: 7))
        #expect(draws(.static, epoch: 7) == d0, "static keeps the first epoch's draws")
        #expect(draws(.dynamic, epoch: 0, seed: 1) != d0, "the seed changes the draws")
        #expect(BernoulliPixels.trainKey(.none, seed: 0, epoch: 0) == nil && BernoulliPixels.testKey(.none) == nil)
        let plain = Self.filled(shard, locals: locals, key: nil)
        #expect(plain == shard.pixels.map { Float($0) / 255 })
    }

    @Test("the test set has one binarization, the same for dynamic and static and for any seed")
    func testSet() throws {
        let dynamic = try #require(BernoulliPixels.testKey(.dynamic))
        #expect(BernoulliPixels.testKey(.static) == dynamic)
        for seed: UInt64 in [0, 1, 99] {
            for epoch in [0, 1] { #expect(BernoulliPixels.trainKey(.dynamic, seed: seed, epoch: epoch) != dynamic) }
        }
    }

    @Test("in-process ranks: the shares of every rank add up to the one-process draws", arguments: [1, 2, 3, 4])
    func localRanks(ranks: Int) throws {
        let key = try #require(BernoulliPixels.trainKey(.dynamic, seed: 9, epoch: 4))
        let results = LocalCommunicatorTests.Results(ranks)
        try LocalCommunicator.run(ranks: ranks) { comm in
            let (sum, reference) = try Self.shareAddsUp(comm: comm, count: 37, key: key)
            results.set(comm.rank, sum == reference ? [1] : [0])
        }
        for r in 0..<ranks { #expect(results.values[r] == [1], "rank \(r) of \(ranks): the shares differ from one process's draws") }
    }

    @Test("the trainer's test loss with binarize: the fixed binary test set, the same on 1 and 2 in-process ranks")
    func trainerEvaluation() throws {
        let root = NSTemporaryDirectory() + "disttrain-binarize-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var options = TrainOptions()
        options.printEpochs = false
        options.tensorboard = false
        @Sendable func config(_ name: String) -> TrainConfig {
            var c = Support.smallConfig(out: root + "/" + name)
            c.data.binarize = .dynamic
            c.training.epochs = 2
            c.training.maxSteps = 100  // one epoch: the checkpoint below is an epoch end
            c.output.gridEvery = 0
            return c
        }
        // An untrained model's BCE hardly depends on the targets: train one epoch first.
        let opts = options
        try LocalCommunicator.run(ranks: 1) { comm in try Trainer(config: config("train"), comm: comm, options: opts, logger: Self.quiet).fit() }
        let checkpoint = root + "/train/checkpoints/" + RunDirectory.checkpointName(step: 100)
        let losses = LocalCommunicatorTests.Results(2)
        var resume = options
        resume.resumeFrom = checkpoint
        let resumed = resume
        for ranks in [1, 2] {
            try LocalCommunicator.run(ranks: ranks) { comm in
                let t = try Trainer(config: config("eval\(ranks)"), comm: comm, options: resumed, logger: Self.quiet)
                let loss = Float(t.evaluate().means(beta: 1).loss)
                if comm.rank == 0 { losses.set(ranks - 1, [loss, Float(t.state.epoch)]) }
            }
        }
        let one = Double(losses.values[0]![0]), two = Double(losses.values[1]![0])
        #expect(abs(one - two) <= 1e-5 * one, "binarized test loss: 1 rank \(one), 2 ranks \(two)")
        // By hand: the model's loss on the test set binarized with the test key, and on its intensities.
        let trained = try TrainedModel(checkpoint: checkpoint)
        let a = trained.architecture
        let test = try DatasetShard.load(images: Support.smallData + "/t10k-images", labels: Support.smallData + "/t10k-labels", classes: 10) { 0..<$0 }
        func byHand(_ key: UInt64?) -> Double {
            let ws = VAEWorkspace(architecture: a, capacity: test.count)
            for r in 0..<test.count { test.fill(ws, row: r, local: r, architecture: a, binarize: key) }
            let noise = GaussianNoise.key(seed: 0, stream: NoiseStream.test, counter: UInt64(losses.values[0]![1]))
            GaussianNoise.fill(ws.eps.base, rows: test.count, dim: a.latent, ids: ws.ids, key: noise)
            let l = trained.model.loss(trained.params.base, ws, rows: test.count)
            return (l.bce + l.kl) / Double(test.count)
        }
        let binary = byHand(BernoulliPixels.testKey(.dynamic)), grey = byHand(nil)
        #expect(abs(one - binary) <= 1e-5 * binary, "trainer \(one), by hand on the binary test set \(binary)")
        // BCE is linear in the target, so binary targets change the mean loss only by the draws'
        // noise (0.07% here): small, but far above the float error of the line above.
        #expect(abs(one - grey) > 2e-4 * grey, "trainer \(one), by hand on the intensities \(grey): not binarized?")
    }

    @Test("data.binarize: a value it does not allow is one error naming the field")
    func configErrors() throws {
        #expect(throws: ConfigError.invalidValue(field: "data.binarize", reason: "must be \"none\", \"dynamic\" or \"static\", got \"yes\"")) {
            _ = try TrainConfig(json: JSON.parse(#"{"data": {"binarize": "yes"}}"#))
        }
        #expect(throws: ConfigError.wrongType(field: "data.binarize", expected: "a string", got: "a boolean")) {
            _ = try TrainConfig(json: JSON.parse(#"{"data": {"binarize": true}}"#))
        }
        let c = try TrainConfig(json: JSON.parse(#"{"data": {"binarize": "static"}}"#))
        #expect(c.data.binarize == .static)
        #expect(try TrainConfig(json: c.json).data.binarize == .static, "config.json round trip")
        #expect(TrainConfig().data.binarize == .none)
    }

    @Test("a checkpoint's training config names its binarization; older ones (without the field) read as none")
    func checkpointMode() throws {
        var c = TrainConfig()
        c.data.binarize = .dynamic
        #expect(Binarization.ofCheckpoint(["training_config": c.json.serialized]) == .dynamic)
        #expect(Binarization.ofCheckpoint(["training_config": #"{"data": {}}"#]) == .none)
        #expect(Binarization.ofCheckpoint([:]) == .none)
    }
}
