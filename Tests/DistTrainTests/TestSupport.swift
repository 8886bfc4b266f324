import DistTrain
import DistTrainIO
import Foundation
import Logging
import Models

/// Paths and shared state for the DistTrain tests.
enum Support {
    /// The package root, from this file's location.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func mnist(_ name: String) -> String { root + "/data/mnist/" + name }

    /// The MPI world (initialized once per process; a plain `swift test` is a world of one,
    /// `mpirun -n N <test binary>` runs the MPI suite on N ranks).
    static var world: MPICommunicator { MPICommunicator.world }

    /// A directory every rank agrees on (rank 0 names it).
    static func sharedTempDir(_ label: String) -> String {
        let mine = NSTemporaryDirectory() + "disttrain-\(label)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        let chosen = String(decoding: world.allgather(Array(mine.utf8))[0], as: UTF8.self)
        return chosen
    }

    /// The first 4000 training and 1000 test records of the vendored MNIST as raw IDX files in
    /// a private directory: trainer tests run on them so a debug build stays quick.
    static let smallData: String = {
        let dir = NSTemporaryDirectory() + "disttrain-testdata-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (set, count) in [("train", 4000), ("t10k", 1000)] {
            let images = try! IDX.readImages(path: mnist("\(set)-images-idx3-ubyte.gz"), records: 0..<count)
            let labels = try! IDX.readLabels(path: mnist("\(set)-labels-idx1-ubyte.gz"), records: 0..<count, classes: 10)
            try! AtomicFile.write(idx(magic: 2051, dims: [count, 28, 28], payload: images.pixels), to: "\(dir)/\(set)-images")
            try! AtomicFile.write(idx(magic: 2049, dims: [count], payload: labels.labels), to: "\(dir)/\(set)-labels")
        }
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "disttrain-testdata-\(getpid())") }
        return dir
    }()

    /// IDX bytes: big-endian magic and dimensions, then the payload.
    static func idx(magic: UInt32, dims: [Int], payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for v in [magic] + dims.map(UInt32.init) { out += [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } }
        return out + payload
    }

    /// A trainer for `config` on `comm` that prints nothing and writes no TensorBoard files,
    /// after its `fit()`.
    static func fitted(_ config: TrainConfig, comm: Communicator, logger: Logger) throws -> Trainer {
        var options = TrainOptions()
        options.printEpochs = false
        options.tensorboard = false
        let trainer = try Trainer(config: config, comm: comm, options: options, logger: logger)
        try trainer.fit()
        return trainer
    }

    /// A config on a small MNIST subset with a small model, for fast trainer tests.
    static func smallConfig(out: String) -> TrainConfig {
        var c = TrainConfig()
        c.data.trainImages = smallData + "/train-images"
        c.data.trainLabels = smallData + "/train-labels"
        c.data.testImages = smallData + "/t10k-images"
        c.data.testLabels = smallData + "/t10k-labels"
        c.model.encoderHidden = [64]
        c.model.decoderHidden = [64]
        c.model.latent = 4
        c.training.globalBatch = 40
        c.training.epochs = 1
        c.training.evalBatch = 1000
        c.output.dir = out
        c.runtime.blasThreads = 1
        return c
    }
}
