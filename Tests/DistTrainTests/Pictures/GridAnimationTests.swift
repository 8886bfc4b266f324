import Foundation
import Logging
import Testing
@testable import DistTrain
@testable import DistTrainIO
import IOTestSupport

/// The trainer's grids/animation.png: one frame per epoch's grid, and none when turned off.
@Suite struct GridAnimationTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func train(epochs: Int, animationMs: Int) throws -> String {
        let dir = NSTemporaryDirectory() + "disttrain-anim-\(UUID().uuidString.prefix(8))"
        var config = Support.smallConfig(out: dir)
        config.training.epochs = epochs
        config.training.maxSteps = 0
        config.output.animationMs = animationMs
        var options = TrainOptions()
        options.printEpochs = false
        options.tensorboard = false
        let opts = options, log = quiet, cfg = config
        try LocalCommunicator.run(ranks: 1) { comm in
            try Trainer(config: cfg, comm: comm, options: opts, logger: log).fit()
        }
        return dir
    }

    @Test("three epochs: an animated PNG of three frames whose default image is epoch 1's grid")
    func animationOfEveryEpoch() throws {
        let dir = try train(epochs: 3, animationMs: 300)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try IOTestFiles.read(dir + "/grids/animation.png")
        let chunks = PNGChunks.of(bytes)
        let actl = try #require(chunks.first { $0.type == "acTL" })
        #expect(PNGChunks.u32(actl.data, 0) == 3)
        #expect(chunks.filter { $0.type == "fcTL" }.count == 3)
        #expect(try PNG.decode(bytes) == PNG.read(path: dir + "/grids/epoch-001.png"))
        #expect(GridAnimation.frames(in: RunDirectory(dir)).map { ($0 as NSString).lastPathComponent }
                == ["epoch-001.png", "epoch-002.png", "epoch-003.png"])
    }

    @Test("output.animation_ms 0: no animation")
    func turnedOff() throws {
        let dir = try train(epochs: 2, animationMs: 0)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(FileManager.default.fileExists(atPath: dir + "/grids/epoch-002.png"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/grids/animation.png"))
    }
}
