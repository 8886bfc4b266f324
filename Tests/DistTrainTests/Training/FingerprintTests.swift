import Foundation
import Testing
@testable import DistTrain
import DistTrainIO
import IOTestSupport

// Fingerprint: FNV-1a 64 (checked against the published test vectors of the FNV reference,
// http://www.isthe.com/chongo/tech/comp/fnv/), and what the experiment fingerprint covers.

@Suite("Fingerprint: FNV-1a hashes and what the experiment fingerprint covers")
struct FingerprintTests {
    @Test("FNV-1a 64 of the reference test strings, as 16 hex digits")
    func fnvVectors() {
        #expect(Fingerprint.hash("") == "cbf29ce484222325")      // the offset basis
        #expect(Fingerprint.hash("a") == "af63dc4c8601ec8c")
        #expect(Fingerprint.hash("foobar") == "85944171f73967e8")
        #expect(Fingerprint.hash([0x61]) == Fingerprint.hash("a"))
    }

    @Test("always 16 lowercase hex digits, leading zeros kept; one changed byte changes it")
    func format() {
        var seen = Set<String>()
        for i in 0..<2000 {
            let h = Fingerprint.hash("input \(i)")
            #expect(h.count == 16 && h.allSatisfy { "0123456789abcdef".contains($0) }, "\(h)")
            seen.insert(h)
        }
        #expect(seen.count == 2000)
        // A seed of 0 and no input hashes to 0: printed in full, not as "0".
        #expect(Fingerprint.hash([], seed: 0) == "0000000000000000")
        #expect(Fingerprint.hash([0x00], seed: 0) == "0000000000000000")
        #expect(Fingerprint.hash([0x01], seed: 0) == "00000100000001b3")   // 1 * FNV prime
    }

    /// Copies of the small test data into `dir` (the same bytes under other paths).
    func copyData(to dir: String) throws -> TrainConfig.Data {
        var d = TrainConfig.Data()
        let names = ["train-images", "train-labels", "t10k-images", "t10k-labels"]
        for name in names {
            try FileManager.default.copyItem(atPath: Support.smallData + "/" + name, toPath: dir + "/" + name)
        }
        d.trainImages = dir + "/train-images"; d.trainLabels = dir + "/train-labels"
        d.testImages = dir + "/t10k-images"; d.testLabels = dir + "/t10k-labels"
        return d
    }

    @Test("the experiment fingerprint: config and data contents count, output settings and paths do not")
    func experiment() throws {
        let scratch = try IOTestDirectory()
        let base = Support.smallConfig(out: scratch.file("run"))
        let reference = try Fingerprint.of(config: base)
        let parts = reference.split(separator: " ")
        #expect(parts.count == 2 && parts[0].hasPrefix("config:") && parts[1].hasPrefix("data:"))
        #expect(try Fingerprint.of(config: base) == reference, "deterministic")

        // Output settings and data paths are not part of the experiment.
        var other = base
        other.output.dir = scratch.file("elsewhere")
        other.output.keepCheckpoints = 9
        other.output.gridEvery = 0
        try FileManager.default.createDirectory(atPath: scratch.file("copy"), withIntermediateDirectories: true)
        other.data = try copyData(to: scratch.file("copy"))
        #expect(try Fingerprint.of(config: other) == reference)

        // A training setting changes the config part only.
        var lr = base
        lr.optimizer.lr *= 2
        let changed = try Fingerprint.of(config: lr)
        #expect(changed.split(separator: " ")[0] != parts[0] && changed.split(separator: " ")[1] == parts[1])

        // One changed byte in a data file changes the data part only.
        var bytes = try IOTestFiles.read(other.data.trainLabels)
        bytes[bytes.count - 1] = (bytes[bytes.count - 1] + 1) % 10
        try IOTestFiles.write(bytes, to: other.data.trainLabels)
        let edited = try Fingerprint.of(config: other)
        #expect(edited.split(separator: " ")[0] == parts[0] && edited.split(separator: " ")[1] != parts[1])

        // A missing data file hashes as "missing", which differs from any file's contents.
        var missing = base
        missing.data.testLabels = scratch.file("no-such-file")
        let gone = try Fingerprint.of(config: missing)
        #expect(gone.split(separator: " ")[1] != parts[1])
    }
}
