import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Where the four MNIST IDX files of a data directory are (gzip or raw).
public struct MNISTFiles: Sendable {
    public let dir: String

    public init(dir: String) { self.dir = dir }

    public var trainImages: String { file("train-images-idx3-ubyte") }
    public var trainLabels: String { file("train-labels-idx1-ubyte") }
    public var testImages: String { file("t10k-images-idx3-ubyte") }
    public var testLabels: String { file("t10k-labels-idx1-ubyte") }

    /// `name.gz` if it exists, else `name` if that exists, else `name.gz` (so errors name the usual file).
    func file(_ name: String) -> String {
        let base = dir.hasSuffix("/") ? dir + name : dir + "/" + name
        if FileBytes.exists(base + ".gz") { return base + ".gz" }
        return FileBytes.exists(base) ? base : base + ".gz"
    }

    /// Records `range` (default: all) of the test set.
    public func test(classes: Int, range: ((Int) throws -> Range<Int>)? = nil) throws -> DatasetShard {
        try DatasetShard.load(images: testImages, labels: testLabels, classes: classes, range: range ?? { 0..<$0 })
    }

    /// Records `range` (default: all) of the training set.
    public func train(classes: Int, range: ((Int) throws -> Range<Int>)? = nil) throws -> DatasetShard {
        try DatasetShard.load(images: trainImages, labels: trainLabels, classes: classes, range: range ?? { 0..<$0 })
    }
}

// MARK: - Encoding and decoding outside training
