import Foundation
import Testing
@testable import DistTrainIO
import IOTestSupport

@Suite struct IDXTests {
    let trainImages = IOTestFiles.mnist + "/train-images-idx3-ubyte.gz"
    let trainLabels = IOTestFiles.mnist + "/train-labels-idx1-ubyte.gz"
    let testImages = IOTestFiles.mnist + "/t10k-images-idx3-ubyte.gz"
    let testLabels = IOTestFiles.mnist + "/t10k-labels-idx1-ubyte.gz"

    /// A tiny images file: `count` images of 2x3 pixels, pixel values 0, 1, 2, ...
    static func tinyImages(count: Int = 4) -> [UInt8] {
        IOTestFiles.idx(magic: 0x803, dims: [UInt32(count), 2, 3], payload: (0..<count * 6).map { UInt8($0 & 0xFF) })
    }

    /// A gzip file large enough that its middle is deflate data, not header.
    static func mediumGzip(in dir: IOTestDirectory) throws -> (path: String, bytes: [UInt8]) {
        var rng = SystemRandomNumberGenerator()
        let payload = (0..<200 * 6).map { _ in UInt8.random(in: 0..<8, using: &rng) }
        let path = dir.file("medium.gz")
        try IOTestFiles.writeGzip(IOTestFiles.idx(magic: 0x803, dims: [200, 2, 3], payload: payload), to: path)
        return (path, try IOTestFiles.read(path))
    }

    @Test func realHeadersAndFirstLabels() throws {
        #expect(try IDX.header(path: trainImages) == IDXHeader(kind: .images, count: 60000, rows: 28, cols: 28))
        #expect(try IDX.header(path: trainLabels) == IDXHeader(kind: .labels, count: 60000, rows: 1, cols: 1))
        #expect(try IDX.header(path: testImages) == IDXHeader(kind: .images, count: 10000, rows: 28, cols: 28))
        let first = try IDX.readLabels(path: trainLabels, records: 0..<5, classes: 10)
        #expect(first.labels == [5, 0, 4, 1, 9])
        #expect(first.count == 5 && first.firstRecord == 0)
        let all = try IDX.readLabels(path: trainLabels, classes: 10)
        #expect(all.count == 60000 && all.labels.count == 60000)
        #expect(Array(all.labels.prefix(5)) == [5, 0, 4, 1, 9])
    }

    @Test func fullTrainingImages() throws {
        let clock = ContinuousClock()
        var images: IDXImages?
        let elapsed = try clock.measure { images = try IDX.readImages(path: trainImages) }
        let read = try #require(images)
        #expect(read.count == 60000 && read.rows == 28 && read.cols == 28 && read.firstRecord == 0)
        #expect(read.pixels.count == 60000 * 28 * 28)
        #expect(read.pixels.contains { $0 == 255 } && read.pixels.contains { $0 == 0 })
        #expect(elapsed < .seconds(3), "reading 60000 images took \(elapsed)")
    }

    @Test func shardEqualsSliceOfFullRead() throws {
        let full = try IDX.readImages(path: testImages)
        let shard = try IDX.readImages(path: testImages, records: 1234..<2345)
        #expect(shard.count == 1111 && shard.firstRecord == 1234 && shard.rows == 28 && shard.cols == 28)
        #expect(shard.pixels == Array(full.pixels[1234 * 784..<2345 * 784]))
        let last = try IDX.readImages(path: testImages, records: 9999..<10000)
        #expect(last.pixels == Array(full.pixels[9999 * 784..<10000 * 784]))
        let empty = try IDX.readImages(path: testImages, records: 10000..<10000)
        #expect(empty.count == 0 && empty.pixels.isEmpty)

        let labels = try IDX.readLabels(path: testLabels, classes: 10)
        let labelShard = try IDX.readLabels(path: testLabels, records: 5000..<7500, classes: 10)
        #expect(labelShard.labels == Array(labels.labels[5000..<7500]))
        #expect(labelShard.firstRecord == 5000 && labelShard.count == 2500)
    }

    @Test func rawEqualsGzipWhateverTheName() throws {
        let dir = try IOTestDirectory()
        let labels = try IDX.readLabels(path: testLabels, classes: 10)
        let bytes = IOTestFiles.idx(magic: 0x801, dims: [10000], payload: labels.labels)
        // Detection goes by the 1f 8b magic, so misleading names must not matter.
        try IOTestFiles.write(bytes, to: dir.file("raw.gz"))
        try IOTestFiles.writeGzip(bytes, to: dir.file("compressed.idx"))
        #expect(try IDX.readLabels(path: dir.file("raw.gz"), classes: 10).labels == labels.labels)
        #expect(try IDX.readLabels(path: dir.file("compressed.idx"), records: 10..<20, classes: 10).labels
                == Array(labels.labels[10..<20]))

        let images = Self.tinyImages()
        try IOTestFiles.write(images, to: dir.file("images"))
        try IOTestFiles.writeGzip(images, to: dir.file("images.gz"))
        let raw = try IDX.readImages(path: dir.file("images"), records: 1..<3)
        let gz = try IDX.readImages(path: dir.file("images.gz"), records: 1..<3)
        #expect(raw.pixels == gz.pixels)
        #expect(raw.pixels == Array(6..<18))
        #expect(try IDX.header(path: dir.file("images")) == IDX.header(path: dir.file("images.gz")))
    }

    @Test func missingFile() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("nope.gz")
        #expect(throws: IDXError.fileNotFound(path: path)) { try IDX.readImages(path: path) }
        #expect(throws: IDXError.fileNotFound(path: path)) { try IDX.header(path: path) }
    }

    @Test func directoryIsUnreadable() throws {
        let dir = try IOTestDirectory()
        let error = #expect(throws: IDXError.self) { try IDX.header(path: dir.path) }
        guard case .unreadable(dir.path, _)? = error else {
            Issue.record("expected unreadable, got \(String(describing: error))")
            return
        }
    }

    @Test func wrongMagic() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("bad")
        try IOTestFiles.write(IOTestFiles.idx(magic: 0x1234_5678, dims: [1, 1, 1], payload: [0]), to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path) }
        #expect(error == .notIDX(path: path, magic: 0x1234_5678, expected: [0x803]))
        #expect(error?.description == "\(path): not an IDX file: magic 0x12345678, expected 0x00000803 (images)")
        // A labels file is not an images file.
        try IOTestFiles.write(IOTestFiles.idx(magic: 0x801, dims: [1], payload: [0]), to: path)
        let wrongKind = #expect(throws: IDXError.notIDX(path: path, magic: 0x801, expected: [0x803])) {
            try IDX.readImages(path: path)
        }
        #expect(wrongKind?.description == "\(path): wrong IDX file: magic 0x00000801 (labels), expected 0x00000803 (images)")
    }

    @Test func wrongDimensions() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("zero-rows")
        try IOTestFiles.write(IOTestFiles.idx(magic: 0x803, dims: [1, 0, 3], payload: []), to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path) }
        guard case .wrongDimensions(path, [1, 0, 3], _)? = error else {
            Issue.record("expected wrongDimensions, got \(String(describing: error))")
            return
        }
        try IOTestFiles.write(IOTestFiles.idx(magic: 0x801, dims: [0xFFFF_FFFF], payload: []), to: path)
        let negative = #expect(throws: IDXError.self) { try IDX.header(path: path) }
        guard case .wrongDimensions(path, [-1], _)? = negative else {
            Issue.record("expected wrongDimensions, got \(String(describing: negative))")
            return
        }
    }

    @Test func truncatedRaw() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("short")
        try IOTestFiles.write(Array(Self.tinyImages(count: 4).dropLast(5)), to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path, records: 0..<1) }
        #expect(error == .truncated(path: path, records: 4, expectedBytes: 40, actualBytes: 35))
        #expect(error?.description == "\(path): truncated: header promises 4 records (40 bytes), file has 35 bytes")
        // A header cut short is reported as such.
        try IOTestFiles.write([0, 0, 8, 3, 0, 0], to: path)
        #expect(throws: IDXError.truncated(path: path, records: nil, expectedBytes: 16, actualBytes: 6)) {
            try IDX.header(path: path)
        }
        try IOTestFiles.write([], to: path)
        #expect(throws: IDXError.truncated(path: path, records: nil, expectedBytes: 8, actualBytes: 0)) {
            try IDX.header(path: path)
        }
    }

    @Test func truncatedDescriptionFormat() {
        let error = IDXError.truncated(path: "data/mnist/train-labels-idx1-ubyte.gz", records: 60000,
                                       expectedBytes: 60008, actualBytes: 3000)
        #expect(error.description
                == "data/mnist/train-labels-idx1-ubyte.gz: truncated: header promises 60000 records (60008 bytes), file has 3000 bytes")
    }

    @Test func truncatedGzip() throws {
        let dir = try IOTestDirectory()
        let (path, bytes) = try Self.mediumGzip(in: dir)
        try IOTestFiles.write(Array(bytes.prefix(bytes.count / 2)), to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path, records: 0..<1) }
        guard case .corruptGzip(path, _)? = error else {
            Issue.record("expected corruptGzip, got \(String(describing: error))")
            return
        }
        // Even the last few bytes (CRC and length trailer) missing is caught.
        try IOTestFiles.write(Array(bytes.dropLast(3)), to: path)
        let trailer = #expect(throws: IDXError.self) { try IDX.readImages(path: path) }
        guard case .corruptGzip(path, _)? = trailer else {
            Issue.record("expected corruptGzip, got \(String(describing: trailer))")
            return
        }
    }

    @Test func corruptGzip() throws {
        let dir = try IOTestDirectory()
        var (path, bytes) = try Self.mediumGzip(in: dir)
        for i in bytes.count / 2..<bytes.count / 2 + 4 { bytes[i] ^= 0xA5 }
        try IOTestFiles.write(bytes, to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path, records: 0..<1) }
        guard case .corruptGzip(path, let reason)? = error else {
            Issue.record("expected corruptGzip, got \(String(describing: error))")
            return
        }
        #expect(!reason.isEmpty && !reason.hasPrefix("<fd:"))
    }

    @Test func corruptGzipChecksum() throws {
        // Flipping a CRC byte leaves the deflate data valid: only zlib's CRC check can notice.
        let dir = try IOTestDirectory()
        var (path, bytes) = try Self.mediumGzip(in: dir)
        bytes[bytes.count - 8] ^= 0x01
        try IOTestFiles.write(bytes, to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path) }
        #expect(error == .corruptGzip(path: path, reason: "incorrect data check"))
    }

    @Test func trailingData() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("long")
        try IOTestFiles.write(Self.tinyImages(count: 4) + [1, 2, 3], to: path)
        #expect(throws: IDXError.trailingData(path: path, records: 4, expectedBytes: 40, actualBytes: 43)) {
            try IDX.readImages(path: path, records: 0..<2)
        }
        try IOTestFiles.writeGzip(Self.tinyImages(count: 4) + [1], to: path)
        #expect(throws: IDXError.trailingData(path: path, records: 4, expectedBytes: 40, actualBytes: 41)) {
            try IDX.readImages(path: path)
        }
    }

    @Test func labelOutOfRange() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("labels.gz")
        try IOTestFiles.writeGzip(IOTestFiles.idx(magic: 0x801, dims: [10], payload: [0, 1, 2, 3, 4, 5, 6, 12, 8, 9]), to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readLabels(path: path, records: 0..<2, classes: 10) }
        #expect(error == .labelOutOfRange(path: path, record: 7, value: 12, classes: 10))
        #expect(error?.description == "\(path): label 12 at record 7 is out of range for 10 classes")
        #expect(try IDX.readLabels(path: path, classes: 13).labels[7] == 12)
    }

    @Test func recordsOutOfRange() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("images")
        try IOTestFiles.write(Self.tinyImages(count: 4), to: path)
        let error = #expect(throws: IDXError.self) { try IDX.readImages(path: path, records: 2..<5) }
        #expect(error == .recordsOutOfRange(path: path, requested: 2..<5, count: 4))
        #expect(error?.description == "\(path): records 2..<5 requested, but the file has 4 records")
        #expect(throws: IDXError.recordsOutOfRange(path: path, requested: -1..<1, count: 4)) {
            try IDX.readImages(path: path, records: -1..<1)
        }
    }
}
