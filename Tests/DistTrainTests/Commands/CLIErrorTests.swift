import Foundation
import Testing
import IOTestSupport
#if canImport(Glibc)
import Glibc
#endif

// End-to-end checks of the real `disttrain` executable on bad input: every mistake must end the
// process quickly with a non-zero status and exactly one `disttrain: error: ...` line on stderr
// that names the problem, with no crash trace and no half-written output.
//
// Build first: `swift build --build-tests` (or with `--scratch-path DIR`); the binary is looked up
// next to the test bundle, then in <root>/.build/debug and <root>/.build-cli/debug.

// MARK: - Locating and running the binary

/// The package root.
fileprivate let cliPackageRoot: URL = URL(fileURLWithPath: Support.root)

/// The outcome of one `disttrain` process (IOTestSupport's TestProcess).
fileprivate typealias CLIResult = ProcessResult

fileprivate enum CLI {
    /// Runs `disttrain arguments` (no mpirun: a world of one) in the package root. A run that
    /// outlives `timeout` is killed and recorded as a failure.
    static func run(_ arguments: [String], scratch: CLIScratch, timeout: Double = 60,
                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> CLIResult {
        try await TestProcess.run(TestProcess.disttrain(), arguments, timeout: timeout, directory: cliPackageRoot.path,
                                  name: "disttrain", sourceLocation: sourceLocation)
    }
}

// MARK: - Expectations

/// Text that only a crash (Swift runtime trap, LLVM stack dump, backtracer) would print.
fileprivate let crashMarkers = ["Fatal error", "Stack dump", "backtrace", "Program crashed", "Segmentation fault"]

/// A rejected input: non-zero exit, one `disttrain: error:` line naming the problem, no crash.
fileprivate func expectCleanFailure(_ r: CLIResult, mentions: [String],
                                    sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!r.timedOut, "timed out", sourceLocation: sourceLocation)
    #expect(r.exitedNormally, "process died of a signal\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
    #expect(r.status != 0, "bad input was accepted (exit status 0)\n\(r.summary.rawValue)", sourceLocation: sourceLocation)

    let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
    let oneLine = lines.count == 2 && lines[1].isEmpty && !lines[0].isEmpty
    #expect(oneLine, "stderr must be exactly one line, got \(max(lines.count - 1, 0)) line(s)\n\(r.summary.rawValue)",
            sourceLocation: sourceLocation)
    let first = lines.first.map(String.init) ?? ""
    #expect(first.hasPrefix("disttrain: error: "), "stderr must start with 'disttrain: error: '\n\(r.summary.rawValue)",
            sourceLocation: sourceLocation)
    for m in mentions {
        #expect(first.contains(m), "the error line should mention \"\(m)\"\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
    }
    let everything = (r.stderr + "\n" + r.stdout).lowercased()
    for marker in crashMarkers {
        #expect(!everything.contains(marker.lowercased()), "crash trace (\"\(marker)\") in the output\n\(r.summary.rawValue)",
                sourceLocation: sourceLocation)
    }
}

/// Nothing half-written: no temporary files (`*.tmp-*`, `.incomplete-*`, `.write-test-*`) anywhere
/// in the scratch directory, and no regular file or step checkpoint directory inside `out`.
fileprivate func expectNoPartialOutput(out: URL, scratch: CLIScratch, _ r: CLIResult,
                                       sourceLocation: SourceLocation = #_sourceLocation) {
    for path in CLIScratch.walk(scratch.url) {
        let name = path.lastPathComponent
        let temporary = name.contains(".tmp-") || name.hasPrefix(".incomplete-") || name.hasPrefix(".write-test-")
        #expect(!temporary, "temporary file left behind: \(path.path)\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
    }
    for path in CLIScratch.walk(out) {
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir)
        if isDir.boolValue {
            #expect(!path.lastPathComponent.hasPrefix("step-"),
                    "checkpoint directory left behind: \(path.path)\n\(r.summary.rawValue)", sourceLocation: sourceLocation)
        } else {
            #expect(Bool(false), "partial output file left behind: \(path.path)\n\(r.summary.rawValue)",
                    sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Scratch space and input files

/// A fresh directory under the system temporary directory, removed by `remove()`.
fileprivate struct CLIScratch: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("disttrain-cli-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    @discardableResult
    func write(_ name: String, text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    /// Every file and directory below `root` (not `root` itself); empty if it does not exist.
    static func walk(_ root: URL) -> [URL] {
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        return e.compactMap { $0 as? URL }
    }
}

/// IDX files as MNIST stores them: big-endian int32 magic and dimensions, then uint8 data.
fileprivate enum CLIIDX {
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func images(count: Int, rows: Int = 28, cols: Int = 28, magic: UInt32 = 2051) -> [UInt8] {
        var bytes = be32(magic) + be32(UInt32(count)) + be32(UInt32(rows)) + be32(UInt32(cols))
        bytes.reserveCapacity(bytes.count + count * rows * cols)
        for i in 0..<count {
            for j in 0..<rows * cols { bytes.append(UInt8(truncatingIfNeeded: i * 37 + j * 11 + (j / cols) * 3)) }
        }
        return bytes
    }

    static func labels(_ values: [UInt8], magic: UInt32 = 2049) -> [UInt8] {
        be32(magic) + be32(UInt32(values.count)) + values
    }

    /// 0, 1, ..., 9, 0, 1, ...: every class equally often.
    static func balancedLabels(_ count: Int, classes: Int = 10) -> [UInt8] {
        (0..<count).map { UInt8($0 % classes) }
    }
}

/// The real MNIST files, by absolute path (the configs are read with the package root as the
/// working directory, but absolute paths make the intent explicit).
fileprivate enum CLIMNIST {
    static func path(_ name: String) -> String { cliPackageRoot.appendingPathComponent("data/mnist/\(name)").path }
    static var trainImages: String { path("train-images-idx3-ubyte.gz") }
    static var trainLabels: String { path("train-labels-idx1-ubyte.gz") }
    static var testImages: String { path("t10k-images-idx3-ubyte.gz") }
    static var testLabels: String { path("t10k-labels-idx1-ubyte.gz") }
}

/// The four data paths of a config.
fileprivate struct CLIDataPaths: Sendable {
    var trainImages: String
    var trainLabels: String
    var testImages: String
    var testLabels: String

    static var mnist: CLIDataPaths {
        CLIDataPaths(trainImages: CLIMNIST.trainImages, trainLabels: CLIMNIST.trainLabels,
                     testImages: CLIMNIST.testImages, testLabels: CLIMNIST.testLabels)
    }

    /// A tiny valid data set in `scratch`: 30 images of 28x28 with balanced labels, used for both
    /// train and test. With a global batch of 10 it gives 3 steps per epoch.
    static func tiny(in scratch: CLIScratch) throws -> CLIDataPaths {
        let images = try scratch.write("tiny-images.idx", CLIIDX.images(count: 30))
        let labels = try scratch.write("tiny-labels.idx", CLIIDX.labels(CLIIDX.balancedLabels(30)))
        return CLIDataPaths(trainImages: images, trainLabels: labels, testImages: images, testLabels: labels)
    }

    var jsonSection: String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        return """
        "data": {"train_images": \(q(trainImages)), "train_labels": \(q(trainLabels)), \
        "test_images": \(q(testImages)), "test_labels": \(q(testLabels))}
        """
    }

    /// A config file holding `sections` (JSON members, e.g. `"model": {"latent": 8}`) and these data paths.
    func config(_ sections: String = "", in scratch: CLIScratch, name: String = "config.json") throws -> String {
        let members = sections.isEmpty ? jsonSection : sections + ",\n  " + jsonSection
        return try scratch.write(name, text: "{\n  \(members)\n}\n")
    }
}

/// Flags that keep any run that gets past validation short.
fileprivate func shortRun(out: URL, batch: Int = 10) -> [String] {
    ["--max-steps", "2", "--epochs", "1", "--batch-size", String(batch), "--out", out.path]
}

// MARK: - A trained run shared by the checkpoint tests

/// A valid tiny training on the real MNIST files: its result and run directory.
fileprivate struct CLITrainedRun: Sendable {
    var result: CLIResult
    var runDir: URL
    var checkpoint: URL { runDir.appendingPathComponent("checkpoints/step-00000002") }
    /// The config the run used (default model, real MNIST by absolute path).
    var config: String

    static func make(in scratch: CLIScratch) async throws -> CLITrainedRun {
        let config = try CLIDataPaths.mnist.config(in: scratch, name: "trained-config.json")
        let run = scratch.url.appendingPathComponent("run")
        let result = try await CLI.run(
            ["--config", config, "--max-steps", "2", "--epochs", "1", "--batch-size", "20", "--out", run.path,
             "--log-level", "warning", "--quiet"],
            scratch: scratch, timeout: 240)
        return CLITrainedRun(result: result, runDir: run, config: config)
    }
}

/// Trains at most once per scope (see `CLISharedTraining`) and hands every test the same run.
fileprivate actor CLITrainingCache {
    @TaskLocal static var current: CLITrainingCache?

    let scratch: CLIScratch
    private var task: Task<CLITrainedRun, Error>?

    init(scratch: CLIScratch) { self.scratch = scratch }

    func trainedRun() async throws -> CLITrainedRun {
        if let task { return try await task.value }
        let scratch = self.scratch
        let t = Task { try await CLITrainedRun.make(in: scratch) }
        task = t
        return try await t.value
    }

    /// The suite's shared run or, outside the suite's scope, a run of the test's own in `scratch`.
    static func trainedRun(fallback scratch: CLIScratch) async throws -> CLITrainedRun {
        if let shared = current { return try await shared.trainedRun() }
        return try await CLITrainedRun.make(in: scratch)
    }

    /// A checkpoint a test may modify: a copy of the shared one in the test's own scratch directory.
    static func checkpointCopy(in scratch: CLIScratch, sourceLocation: SourceLocation = #_sourceLocation) async throws -> (CLITrainedRun, URL) {
        let trained = try await trainedRun(fallback: scratch)
        try #require(trained.result.status == 0 && trained.result.exitedNormally,
                     "the tiny training that makes the checkpoint failed\n\(trained.result.summary.rawValue)",
                     sourceLocation: sourceLocation)
        let copy = scratch.url.appendingPathComponent("checkpoint-copy", isDirectory: true)
        try FileManager.default.copyItem(at: trained.checkpoint, to: copy)
        return (trained, copy)
    }
}

/// Gives the suite one scratch directory and one lazily trained run, removed when the suite ends.
fileprivate struct CLISharedTraining: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        try await CLITrainingCache.$current.withValue(CLITrainingCache(scratch: scratch)) {
            try await function()
        }
    }
}

// MARK: - Cases

fileprivate struct CLIConfigCase: Sendable, CustomTestStringConvertible {
    var name: String
    /// JSON members besides "data" (which always holds the tiny valid data set).
    var sections: String
    var mentions: [String]
    var testDescription: String { name }
}

fileprivate struct CLIFlagCase: Sendable, CustomTestStringConvertible {
    var name: String
    var flags: [String]
    var mentions: [String]
    /// Whether the case sets --epochs itself (then the short-run flags leave it out).
    var setsEpochs = false
    var setsBatch = false
    var testDescription: String { name }
}

fileprivate enum CLIDataDefect: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case missingImages, truncatedImages, corruptGzip, wrongMagic, labelOutOfRange, countMismatch
    var testDescription: String { rawValue }
}

@Suite("disttrain command line: bad input fails cleanly")
struct CLIErrorTests {

    // MARK: Config files

    @Test("missing config file")
    func missingConfigFile() async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let missing = scratch.path("no-such-config.json")
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", missing] + shortRun(out: out), scratch: scratch)
        expectCleanFailure(r, mentions: [missing])
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    @Test("config that is not JSON, or not an object at the top level",
          arguments: [("not JSON", "{\"model\": {\"latent\": 16,\n", [String]()),
                      ("trailing garbage", "{\"model\": {}} extra", []),
                      ("top level is an array", "[1, 2, 3]\n", ["top level must be a JSON object"]),
                      ("top level is a string", "\"config\"\n", ["top level must be a JSON object"])])
    func malformedConfig(name: String, text: String, mentions: [String]) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try scratch.write("bad.json", text: text)
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", config] + shortRun(out: out), scratch: scratch)
        expectCleanFailure(r, mentions: [config] + mentions)
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    fileprivate static let configCases: [CLIConfigCase] = [
        // Unknown names.
        .init(name: "unknown field training.epoch", sections: #""training": {"epoch": 3}"#,
              mentions: ["training.epoch\"", "did you mean \"training.epochs\""]),
        .init(name: "unknown top-level section", sections: #""trainer": {"epochs": 3}"#,
              mentions: ["unknown field", "\"trainer\""]),
        .init(name: "unknown field model.latnet", sections: #""model": {"latnet": 8}"#,
              mentions: ["model.latnet", "model.latent"]),
        // Wrong types.
        .init(name: "latent is a string", sections: #""model": {"latent": "16"}"#, mentions: ["model.latent", "integer"]),
        .init(name: "encoder_hidden is a number", sections: #""model": {"encoder_hidden": 512}"#,
              mentions: ["model.encoder_hidden", "array"]),
        .init(name: "global_batch is fractional", sections: #""training": {"global_batch": 2.5}"#,
              mentions: ["training.global_batch", "integer"]),
        .init(name: "section is not an object", sections: #""optimizer": [0.001]"#, mentions: ["optimizer", "object"]),
        // Sizes and rates out of range.
        .init(name: "latent 0", sections: #""model": {"latent": 0}"#, mentions: ["model.latent", "at least 1"]),
        .init(name: "encoder_hidden [512, 0]", sections: #""model": {"encoder_hidden": [512, 0]}"#,
              mentions: ["model.encoder_hidden[1]", "at least 1"]),
        .init(name: "global_batch 0", sections: #""training": {"global_batch": 0}"#,
              mentions: ["training.global_batch", "at least 1"]),
        .init(name: "lr 0", sections: #""optimizer": {"lr": 0}"#, mentions: ["optimizer.lr", "greater than 0"]),
        .init(name: "lr -1", sections: #""optimizer": {"lr": -1}"#, mentions: ["optimizer.lr", "greater than 0"]),
        .init(name: "epochs -2", sections: #""training": {"epochs": -2}"#, mentions: ["training.epochs", "at least 1"]),
    ]

    @Test("invalid config field", arguments: configCases)
    fileprivate func invalidConfigField(_ c: CLIConfigCase) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(c.sections, in: scratch)
        let out = scratch.url.appendingPathComponent("run")
        // No --batch-size here: the global_batch cases must reach the config check.
        let r = try await CLI.run(["--config", config, "--max-steps", "2", "--out", out.path], scratch: scratch)
        expectCleanFailure(r, mentions: c.mentions)
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    @Test("global batch smaller than the number of classes")
    func batchTooSmallForClasses() async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(in: scratch)
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", config] + shortRun(out: out, batch: 5), scratch: scratch)
        expectCleanFailure(r, mentions: ["every", "label", "10 classes"])
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    // MARK: Flags

    fileprivate static let flagCases: [CLIFlagCase] = [
        .init(name: "--epochs 0", flags: ["--epochs", "0"], mentions: ["--epochs", "at least 1"], setsEpochs: true),
        // ArgumentParser reads "-3" as an option, so this reports a missing value; it must still name the flag.
        .init(name: "--batch-size -3", flags: ["--batch-size", "-3"], mentions: ["--batch-size"], setsBatch: true),
        .init(name: "--batch-size=-3", flags: ["--batch-size=-3"], mentions: ["--batch-size", "at least 1"], setsBatch: true),
        .init(name: "--batch-size 0", flags: ["--batch-size", "0"], mentions: ["--batch-size", "at least 1"], setsBatch: true),
        .init(name: "--lr abc", flags: ["--lr", "abc"], mentions: ["--lr", "abc"]),
        .init(name: "--lr 0", flags: ["--lr", "0"], mentions: ["--lr", "optimizer.lr", "greater than 0"]),
        .init(name: "--lr inf", flags: ["--lr", "inf"], mentions: ["--lr", "finite"]),
        // One limit, checked once: the flag gets the field's bound, and huge values never trap.
        .init(name: "--threads 2147483647", flags: ["--threads", "2147483647"],
              mentions: ["--threads", "runtime.blas_threads", "at most 1024"]),
        .init(name: "--threads 2147483648", flags: ["--threads", "2147483648"],
              mentions: ["--threads", "runtime.blas_threads", "at most 1024"]),
        .init(name: "--max-steps Int.max", flags: ["--max-steps", "9223372036854775807"],
              mentions: ["--max-steps", "training.max_steps", "at most 9007199254740991"]),
        .init(name: "--epochs too large for Int", flags: ["--epochs", "9223372036854775808"], mentions: ["--epochs"], setsEpochs: true),
        .init(name: "--seed=-1", flags: ["--seed=-1"], mentions: ["--seed", "training.seed", "at least 0"]),
        .init(name: "unknown flag --nope", flags: ["--nope"], mentions: ["--nope"]),
        .init(name: "--resume with --resume-from", flags: ["--resume", "--resume-from", "/nonexistent-checkpoint"],
              mentions: ["--resume", "exclusive"]),
    ]

    @Test("invalid flag", arguments: flagCases)
    fileprivate func invalidFlag(_ c: CLIFlagCase) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(in: scratch)
        let out = scratch.url.appendingPathComponent("run")
        var args = ["--config", config, "--max-steps", "2", "--out", out.path]
        if !c.setsEpochs { args += ["--epochs", "1"] }
        if !c.setsBatch { args += ["--batch-size", "10"] }
        let r = try await CLI.run(args + c.flags, scratch: scratch)
        expectCleanFailure(r, mentions: c.mentions)
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    @Test("eval --threads gets the limit of runtime.blas_threads", arguments: ["2147483647", "2147483648", "1025"])
    func evalThreads(_ threads: String) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let r = try await CLI.run(["eval", "--checkpoint", scratch.path("no-checkpoint"), "--threads", threads], scratch: scratch)
        expectCleanFailure(r, mentions: ["--threads", "at most 1024", threads])
    }

    // MARK: Data files

    @Test("the tiny IDX data set used by the data cases is accepted")
    func tinyDataControl() async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(in: scratch)
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", config, "--quiet", "--log-level", "warning"] + shortRun(out: out),
                                  scratch: scratch)
        #expect(r.exitedNormally && r.status == 0, "\(r.summary.rawValue)")
        #expect(r.stderr.isEmpty, "\(r.summary.rawValue)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoints/step-00000002/model.safetensors").path))
    }

    @Test("bad data file", arguments: CLIDataDefect.allCases)
    fileprivate func badDataFile(_ defect: CLIDataDefect) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        var data = try CLIDataPaths.tiny(in: scratch)
        let mentions: [String]
        switch defect {
        case .missingImages:
            data.trainImages = scratch.path("absent-images.idx")
            mentions = [data.trainImages, "no such file"]
        case .truncatedImages:
            let whole = CLIIDX.images(count: 30)
            data.trainImages = try scratch.write("cut-images.idx", Array(whole.prefix(whole.count - 1000)))
            mentions = [data.trainImages, "truncated"]
        case .corruptGzip:
            // The real test labels with bytes in the middle of the deflate stream flipped.
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: CLIMNIST.testLabels)))
            let mid = bytes.count / 2
            for i in mid..<mid + 16 { bytes[i] ^= 0xA5 }
            data.testImages = CLIMNIST.testImages
            data.testLabels = try scratch.write("t10k-labels-corrupt.gz", bytes)
            mentions = [data.testLabels, "gzip"]
        case .wrongMagic:
            data.trainImages = try scratch.write("magic-images.idx", CLIIDX.images(count: 30, magic: 2050))
            mentions = [data.trainImages, "magic"]
        case .labelOutOfRange:
            var labels = CLIIDX.balancedLabels(30)
            labels[17] = 12
            data.trainLabels = try scratch.write("label12.idx", CLIIDX.labels(labels))
            mentions = [data.trainLabels, "label 12", "out of range", "10 classes"]
        case .countMismatch:
            data.trainLabels = try scratch.write("20-labels.idx", CLIIDX.labels(CLIIDX.balancedLabels(20)))
            mentions = [data.trainImages, data.trainLabels, "30 images", "20 labels"]
        }
        let config = try data.config(in: scratch)
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", config] + shortRun(out: out), scratch: scratch)
        expectCleanFailure(r, mentions: mentions)
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    // MARK: Output directory

    @Test("--out below a regular file")
    func outputUnderRegularFile() async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(in: scratch)
        let file = try scratch.write("afile", text: "not a directory\n")
        let out = URL(fileURLWithPath: file).appendingPathComponent("run")
        let r = try await CLI.run(["--config", config] + shortRun(out: out), scratch: scratch)
        expectCleanFailure(r, mentions: [out.path, "cannot create"])
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "not a directory\n", "the blocking file was changed")
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    // MARK: Checkpoints

    @Test("--resume-from a directory without a checkpoint", arguments: ["empty directory", "nonexistent directory"])
    func resumeFromNothing(_ kind: String) async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(in: scratch)
        let dir = scratch.url.appendingPathComponent("not-a-checkpoint")
        if kind == "empty directory" { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", config, "--resume-from", dir.path] + shortRun(out: out), scratch: scratch)
        expectCleanFailure(r, mentions: [dir.path])
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    @Test("--resume with an empty run directory")
    func resumeWithoutCheckpoints() async throws {
        let scratch = try CLIScratch()
        defer { scratch.remove() }
        let config = try CLIDataPaths.tiny(in: scratch).config(in: scratch)
        let out = scratch.url.appendingPathComponent("run")
        let r = try await CLI.run(["--config", config, "--resume"] + shortRun(out: out), scratch: scratch)
        expectCleanFailure(r, mentions: ["nothing to resume", out.path])
        expectNoPartialOutput(out: out, scratch: scratch, r)
    }

    /// Tests that need a real checkpoint: one tiny training on MNIST, shared.
    @Suite("with a trained checkpoint", CLISharedTraining())
    struct WithCheckpoint {

        @Test("positive control: a tiny valid run succeeds quietly and writes its outputs")
        func validTinyRun() async throws {
            let scratch = try CLIScratch()
            defer { scratch.remove() }
            let trained = try await CLITrainingCache.trainedRun(fallback: scratch)
            let r = trained.result
            #expect(!r.timedOut)
            #expect(r.exitedNormally && r.status == 0, "the valid run failed\n\(r.summary.rawValue)")
            let loud = r.stderr.split(separator: "\n").filter { line in
                ["warning", "error", "critical", "fatal"].contains { line.lowercased().contains($0) }
            }
            #expect(loud.isEmpty, "stderr at warning level or above\n\(r.summary.rawValue)")
            #expect(r.stdout.isEmpty, "--quiet run printed on stdout\n\(r.summary.rawValue)")
            for marker in crashMarkers { #expect(!r.stderr.lowercased().contains(marker.lowercased())) }

            let fm = FileManager.default
            let run = trained.runDir
            let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            let lines = metrics.split(separator: "\n")
            #expect(lines.count == 1, "metrics.jsonl: \(metrics)")
            #expect(lines.first?.contains("\"step\":2") == true, "metrics.jsonl: \(metrics)")
            let png = try Data(contentsOf: run.appendingPathComponent("grids/epoch-001.png"))
            #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "grids/epoch-001.png is not a PNG")
            for name in ["model.safetensors", "optimizer.safetensors", "trainer.json"] {
                let p = trained.checkpoint.appendingPathComponent(name).path
                let size = (try? fm.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
                #expect(size > 0, "missing or empty checkpoint file \(p)")
            }
            let latest = try String(contentsOf: run.appendingPathComponent("checkpoints/latest"), encoding: .utf8)
            #expect(latest.trimmingCharacters(in: .whitespacesAndNewlines) == "step-00000002")
            #expect(fm.fileExists(atPath: run.appendingPathComponent("config.json").path))
            for path in CLIScratch.walk(run) {
                let name = path.lastPathComponent
                #expect(!(name.contains(".tmp-") || name.hasPrefix(".incomplete-") || name.hasPrefix(".write-test-")),
                        "temporary file left in the run directory: \(path.path)")
            }
        }

        @Test("--resume-from a checkpoint whose model.safetensors is truncated")
        func truncatedModel() async throws {
            let scratch = try CLIScratch()
            defer { scratch.remove() }
            let (trained, checkpoint) = try await CLITrainingCache.checkpointCopy(in: scratch)
            let model = checkpoint.appendingPathComponent("model.safetensors")
            let bytes = try Data(contentsOf: model)
            try bytes.prefix(bytes.count / 2).write(to: model)
            let out = scratch.url.appendingPathComponent("resumed")
            let r = try await CLI.run(["--config", trained.config, "--resume-from", checkpoint.path] + shortRun(out: out, batch: 20),
                                      scratch: scratch)
            expectCleanFailure(r, mentions: [model.path])
            expectNoPartialOutput(out: out, scratch: scratch, r)
        }

        @Test("--resume-from a checkpoint of another architecture")
        func otherArchitecture() async throws {
            let scratch = try CLIScratch()
            defer { scratch.remove() }
            let (_, checkpoint) = try await CLITrainingCache.checkpointCopy(in: scratch)
            let config = try CLIDataPaths.mnist.config(#""model": {"latent": 8}"#, in: scratch)
            let out = scratch.url.appendingPathComponent("resumed")
            let r = try await CLI.run(["--config", config, "--resume-from", checkpoint.path] + shortRun(out: out, batch: 20),
                                      scratch: scratch)
            expectCleanFailure(r, mentions: [checkpoint.path])
            let line = r.stderr
            #expect(line.contains("different architecture") || line.contains("shape"),
                    "the error should say the architecture differs or name a tensor shape\n\(r.summary.rawValue)")
            expectNoPartialOutput(out: out, scratch: scratch, r)
        }
    }
}
