import DistTrain
import Foundation
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

    /// A config on the vendored MNIST with absolute paths and a small model, for fast tests.
    static func smallConfig(out: String) -> TrainConfig {
        var c = TrainConfig()
        c.data.trainImages = mnist("train-images-idx3-ubyte.gz")
        c.data.trainLabels = mnist("train-labels-idx1-ubyte.gz")
        c.data.testImages = mnist("t10k-images-idx3-ubyte.gz")
        c.data.testLabels = mnist("t10k-labels-idx1-ubyte.gz")
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
