import DistTrainIO
import Models

/// One rank's contiguous slice of an IDX image/label pair, kept as bytes (pixels are scaled to
/// [0, 1] as they are copied into a batch).
public struct DatasetShard: Sendable {
    public let pixels: [UInt8]
    public let labels: [UInt8]
    /// Index of the shard's first record in the whole file: sample ids are global.
    public let firstIndex: Int
    public let count: Int
    /// Pixels per image (rows * cols).
    public let inputDim: Int
    public let rows: Int
    public let cols: Int
    /// Records in the whole file.
    public let totalCount: Int

    /// Records in an image/label pair, after checking both headers agree and are not empty.
    public static func recordCount(images: String, labels: String) throws -> Int {
        // A device or FIFO may never end (/dev/zero): data files must be regular files.
        for path in [images, labels] {
            if let kind = FileKind.special(path) { throw IDXError.unreadable(path: path, reason: "\(kind), not a regular file") }
        }
        let ih = try IDX.header(path: images)
        let lh = try IDX.header(path: labels)
        guard ih.count == lh.count else {
            throw DatasetError.countMismatch(images: images, imageCount: ih.count, labels: labels, labelCount: lh.count)
        }
        guard ih.count > 0 else { throw DatasetError.emptyDataset(path: images) }
        return ih.count
    }

    /// Checks both headers, then reads records `range(total)` of each file.
    public static func load(images: String, labels: String, classes: Int,
                            range: (Int) throws -> Range<Int>) throws -> DatasetShard {
        let total = try recordCount(images: images, labels: labels)
        let r = try range(total)
        let img = try IDX.readImages(path: images, records: r)
        let lab = try IDX.readLabels(path: labels, records: r, classes: classes)
        return DatasetShard(pixels: img.pixels, labels: lab.labels, firstIndex: r.lowerBound, count: r.count,
                            inputDim: img.rows * img.cols, rows: img.rows, cols: img.cols, totalCount: total)
    }

    /// Copies sample `local` into row `row` of the workspace: pixels / 255 (or, with a
    /// `binarize` key, their Bernoulli draws: see `BernoulliPixels`), the one-hot label, its id.
    @inline(__always)
    public func fill(_ ws: VAEWorkspace, row: Int, local: Int, architecture a: VAEArchitecture, binarize: UInt64? = nil) {
        let dst = ws.encoderInput.base + row * a.encoderInputWidth
        pixels.withUnsafeBufferPointer { src in
            let s = src.baseAddress! + local * inputDim
            if let key = binarize {
                let rowKey = BernoulliPixels.rowKey(key, id: firstIndex + local)
                for j in 0..<inputDim { dst[j] = BernoulliPixels.draw(intensity: s[j], rowKey: rowKey, pixel: j) }
            } else {
                for j in 0..<inputDim { dst[j] = Float(s[j]) / 255 }  // divide, as torchvision's ToTensor does
            }
        }
        ws.ids[row] = Int32(firstIndex + local)
        ws.setLabel(row: row, label: Int(labels[local]), architecture: a)
    }
}
