import DistTrainIO
import Models

/// A problem with a configuration file or an override, naming the field at fault.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case syntax(path: String, reason: String)
    case notAnObject(path: String)
    case unknownField(field: String, suggestion: String?)
    case wrongType(field: String, expected: String, got: String)
    case invalidValue(field: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "config \(path): cannot read: \(reason)"
        case let .syntax(path, reason): return "config \(path): \(reason)"
        case let .notAnObject(path): return "config \(path): the top level must be a JSON object"
        case let .unknownField(field, suggestion):
            return "config: unknown field \"\(field)\"" + (suggestion.map { " (did you mean \"\($0)\"?)" } ?? "")
        case let .wrongType(field, expected, got): return "config: \"\(field)\" must be \(expected), got \(got)"
        case let .invalidValue(field, reason): return "config: \"\(field)\" \(reason)"
        }
    }
}

/// Everything a training run needs. Defaults reproduce seed 000's CVAE recipe; every field is
/// documented in the README's config reference.
public struct TrainConfig: Equatable, Sendable {
    public struct Model: Equatable, Sendable {
        /// "both" (CVAE), "decoder" (label to the decoder only) or "none" (plain VAE).
        public var conditioning: Conditioning = .both
        public var encoderHidden: [Int] = [512, 512]
        public var decoderHidden: [Int] = [512, 512]
        public var latent = 16
        public var classes = 10
        /// "relu" or "leaky_relu".
        public var activation = "relu"
        public var leakySlope: Double = 0.2
        /// [gumbel] "gaussian" or "categorical" (Gumbel-softmax; `latent` is then the number of categories).
        public var latentKind: LatentKind = .gaussian
        public init() {}
    }

    public struct Data: Equatable, Sendable {
        public var trainImages = "data/mnist/train-images-idx3-ubyte.gz"
        public var trainLabels = "data/mnist/train-labels-idx1-ubyte.gz"
        public var testImages = "data/mnist/t10k-images-idx3-ubyte.gz"
        public var testLabels = "data/mnist/t10k-labels-idx1-ubyte.gz"
        public init() {}
    }

    public struct Optimizer: Equatable, Sendable {
        public var lr: Double = 1e-3
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var eps: Double = 1e-8
        public init() {}
    }

    public struct Training: Equatable, Sendable {
        public var epochs = 50
        public var globalBatch = 256
        public var seed = 0
        /// Weight of the KL term (beta-VAE); 1 is the plain ELBO.
        public var klWeight: Double = 1
        /// Stop after this many optimizer steps in total (0: no limit).
        public var maxSteps = 0
        /// Rows per forward pass when evaluating the test set.
        public var evalBatch = 500
        /// Micro-batches per rank whose gradients are summed before one allreduce and one
        /// optimizer step: the same result as one local batch, in 1/accumulate the memory.
        public var accumulate = 1
        /// [gumbel] Gumbel-softmax temperature schedule (categorical latents only):
        /// tau = max(tauMin, tauStart * exp(-tauDecay * step)).
        public var tauStart: Double = 1.0
        public var tauMin: Double = 0.5
        public var tauDecay: Double = 3e-5
        public init() {}
    }

    public struct Output: Equatable, Sendable {
        public var dir = "runs/cvae"
        /// Write a generation grid every this many epochs (0: never).
        public var gridEvery = 1
        /// Also checkpoint every this many steps (0: only at epoch ends).
        public var checkpointEverySteps = 0
        /// Step checkpoints to keep (the best one is kept as well).
        public var keepCheckpoints = 3
        public init() {}
    }

    public struct Runtime: Equatable, Sendable {
        /// OpenBLAS threads per rank (0: cores on this host / ranks on this host).
        public var blasThreads = 0
        /// Compare a parameter checksum across ranks every this many steps (0: off).
        public var checksumEvery = 0
        /// "overlap": gradient buckets reduced with MPI_Iallreduce while backward runs;
        /// "single": one blocking MPI_Allreduce after backward.
        public var allreduce: AllreduceMode = .overlap
        /// Target bucket size for "overlap", in MiB of float32 gradients.
        public var bucketMB: Double = 1
        /// "fp32", or "bf16" to send gradients as bfloat16 (added in float32).
        public var wire: WirePrecision = .fp32
        public init() {}
    }

    public var model = Model()
    public var data = Data()
    public var optimizer = Optimizer()
    public var training = Training()
    public var output = Output()
    public var runtime = Runtime()

    public init() {}
}

// MARK: Parsing

extension TrainConfig {
    /// Reads and validates a config file.
    public static func load(path: String) throws -> TrainConfig {
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path) } catch { throw ConfigError.unreadable(path: path, reason: "\(error)") }
        let json: JSON
        do { json = try JSON.parse(bytes: bytes) } catch let e as JSONSyntaxError {
            throw ConfigError.syntax(path: path, reason: e.description)
        }
        guard case .object = json else { throw ConfigError.notAnObject(path: path) }
        return try TrainConfig(json: json)
    }

    /// Builds a config from parsed JSON; missing fields keep their defaults.
    public init(json: JSON) throws {
        self.init()
        let root = try FieldReader(json, path: "")
        try root.only(["model", "data", "optimizer", "training", "output", "runtime"])
        if let m = try root.section("model") {
            try m.only(["conditioning", "encoder_hidden", "decoder_hidden", "latent", "classes", "activation", "leaky_slope",
                        "latent_kind"])
            if let s = try m.string("conditioning") {
                guard let c = Conditioning(rawValue: s) else {
                    throw ConfigError.invalidValue(field: "model.conditioning", reason: "must be \"both\", \"decoder\" or \"none\", got \"\(s)\"")
                }
                model.conditioning = c
            }
            if let v = try m.intArray("encoder_hidden", min: 1) { model.encoderHidden = v }
            if let v = try m.intArray("decoder_hidden", min: 1) { model.decoderHidden = v }
            if let v = try m.int("latent", min: 1, max: 4096) { model.latent = v }
            if let v = try m.int("classes", min: 1, max: 256) { model.classes = v }
            if let s = try m.string("activation") {
                guard ["relu", "leaky_relu"].contains(s) else {
                    throw ConfigError.invalidValue(field: "model.activation", reason: "must be \"relu\" or \"leaky_relu\", got \"\(s)\"")
                }
                model.activation = s
            }
            if let v = try m.double("leaky_slope", min: 0, max: 1) { model.leakySlope = v }
            // [gumbel]
            if let s = try m.string("latent_kind") {
                guard let k = LatentKind(rawValue: s) else {
                    throw ConfigError.invalidValue(field: "model.latent_kind", reason: "must be \"gaussian\" or \"categorical\", got \"\(s)\"")
                }
                model.latentKind = k
            }
        }
        if let d = try root.section("data") {
            try d.only(["train_images", "train_labels", "test_images", "test_labels"])
            if let v = try d.string("train_images") { data.trainImages = v }
            if let v = try d.string("train_labels") { data.trainLabels = v }
            if let v = try d.string("test_images") { data.testImages = v }
            if let v = try d.string("test_labels") { data.testLabels = v }
        }
        if let o = try root.section("optimizer") {
            try o.only(["lr", "beta1", "beta2", "eps"])
            if let v = try o.double("lr", min: 0, exclusiveMin: true) { optimizer.lr = v }
            if let v = try o.double("beta1", min: 0, max: 1, exclusiveMax: true) { optimizer.beta1 = v }
            if let v = try o.double("beta2", min: 0, max: 1, exclusiveMax: true) { optimizer.beta2 = v }
            if let v = try o.double("eps", min: 0, exclusiveMin: true) { optimizer.eps = v }
        }
        if let t = try root.section("training") {
            try t.only(["epochs", "global_batch", "seed", "kl_weight", "max_steps", "eval_batch", "accumulate",
                        "tau_start", "tau_min", "tau_decay"])
            if let v = try t.int("epochs", min: 1) { training.epochs = v }
            if let v = try t.int("global_batch", min: 1) { training.globalBatch = v }
            if let v = try t.int("seed", min: 0) { training.seed = v }
            if let v = try t.double("kl_weight", min: 0) { training.klWeight = v }
            if let v = try t.int("max_steps", min: 0) { training.maxSteps = v }
            if let v = try t.int("eval_batch", min: 1) { training.evalBatch = v }
            if let v = try t.int("accumulate", min: 1, max: 1 << 20) { training.accumulate = v }
            // [gumbel]
            if let v = try t.double("tau_start", min: 0, exclusiveMin: true) { training.tauStart = v }
            if let v = try t.double("tau_min", min: 0, exclusiveMin: true) { training.tauMin = v }
            if let v = try t.double("tau_decay", min: 0) { training.tauDecay = v }
        }
        if let o = try root.section("output") {
            try o.only(["dir", "grid_every", "checkpoint_every_steps", "keep_checkpoints"])
            if let v = try o.string("dir") {
                guard !v.isEmpty else { throw ConfigError.invalidValue(field: "output.dir", reason: "must not be empty") }
                output.dir = v
            }
            if let v = try o.int("grid_every", min: 0) { output.gridEvery = v }
            if let v = try o.int("checkpoint_every_steps", min: 0) { output.checkpointEverySteps = v }
            if let v = try o.int("keep_checkpoints", min: 1) { output.keepCheckpoints = v }
        }
        if let r = try root.section("runtime") {
            try r.only(["blas_threads", "checksum_every", "allreduce", "bucket_mb", "wire"])
            if let v = try r.int("blas_threads", min: 0, max: 1024) { runtime.blasThreads = v }
            if let v = try r.int("checksum_every", min: 0) { runtime.checksumEvery = v }
            if let v = try r.string("allreduce") {
                guard let m = AllreduceMode(rawValue: v) else {
                    throw ConfigError.invalidValue(field: "runtime.allreduce", reason: "must be \"overlap\" or \"single\", got \"\(v)\"")
                }
                runtime.allreduce = m
            }
            if let v = try r.double("bucket_mb", min: 0, exclusiveMin: true) { runtime.bucketMB = v }
            if let v = try r.string("wire") {
                guard let w = WirePrecision(rawValue: v) else {
                    throw ConfigError.invalidValue(field: "runtime.wire", reason: "must be \"fp32\" or \"bf16\", got \"\(v)\"")
                }
                runtime.wire = w
            }
        }
    }

    /// The model architecture for inputs of `inputDim` pixels.
    public func architecture(inputDim: Int) -> VAEArchitecture {
        VAEArchitecture(inputDim: inputDim, classes: model.classes, encoderHidden: model.encoderHidden,
                        decoderHidden: model.decoderHidden, latent: model.latent,
                        activation: model.activation == "leaky_relu" ? .leakyReLU(slope: Float(model.leakySlope)) : .relu,
                        conditioning: model.conditioning, latentKind: model.latentKind)
    }

    /// The whole config as JSON, in the file's own schema (written into every run directory).
    public var json: JSON {
        .object([
            ("model", .object([
                ("conditioning", .string(model.conditioning.rawValue)),
                ("encoder_hidden", .array(model.encoderHidden.map { .number(Double($0)) })),
                ("decoder_hidden", .array(model.decoderHidden.map { .number(Double($0)) })),
                ("latent", .number(Double(model.latent))),
                ("classes", .number(Double(model.classes))),
                ("activation", .string(model.activation)),
                ("leaky_slope", .number(model.leakySlope)),
                ("latent_kind", .string(model.latentKind.rawValue)),  // [gumbel]
            ])),
            ("data", .object([
                ("train_images", .string(data.trainImages)), ("train_labels", .string(data.trainLabels)),
                ("test_images", .string(data.testImages)), ("test_labels", .string(data.testLabels)),
            ])),
            ("optimizer", .object([
                ("lr", .number(optimizer.lr)), ("beta1", .number(optimizer.beta1)),
                ("beta2", .number(optimizer.beta2)), ("eps", .number(optimizer.eps)),
            ])),
            ("training", .object([
                ("epochs", .number(Double(training.epochs))), ("global_batch", .number(Double(training.globalBatch))),
                ("seed", .number(Double(training.seed))), ("kl_weight", .number(training.klWeight)),
                ("max_steps", .number(Double(training.maxSteps))), ("eval_batch", .number(Double(training.evalBatch))),
                ("accumulate", .number(Double(training.accumulate))),
                // [gumbel]
                ("tau_start", .number(training.tauStart)), ("tau_min", .number(training.tauMin)),
                ("tau_decay", .number(training.tauDecay)),
            ])),
            ("output", .object([
                ("dir", .string(output.dir)), ("grid_every", .number(Double(output.gridEvery))),
                ("checkpoint_every_steps", .number(Double(output.checkpointEverySteps))),
                ("keep_checkpoints", .number(Double(output.keepCheckpoints))),
            ])),
            ("runtime", .object([
                ("blas_threads", .number(Double(runtime.blasThreads))),
                ("checksum_every", .number(Double(runtime.checksumEvery))),
                ("allreduce", .string(runtime.allreduce.rawValue)),
                ("bucket_mb", .number(runtime.bucketMB)),
                ("wire", .string(runtime.wire.rawValue)),
            ])),
        ])
    }
}

/// Typed, range-checked access to one JSON object, with errors that name the dotted field.
struct FieldReader {
    let pairs: [(String, JSON)]
    let path: String

    init(_ json: JSON, path: String) throws {
        guard case let .object(p) = json else {
            throw ConfigError.wrongType(field: path, expected: "an object", got: json.typeName)
        }
        pairs = p
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// Rejects any field not in `known`, suggesting the closest known name.
    func only(_ known: [String]) throws {
        for (key, _) in pairs where !known.contains(key) {
            let best = known.min { editDistance($0, key) < editDistance($1, key) }
            let suggestion = best.flatMap { editDistance($0, key) <= max(2, key.count / 3) ? name($0) : nil }
            throw ConfigError.unknownField(field: name(key), suggestion: suggestion)
        }
    }

    func value(_ key: String) -> JSON? {
        guard let v = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        if case .null = v { return nil }
        return v
    }

    func section(_ key: String) throws -> FieldReader? {
        guard let v = value(key) else { return nil }
        return try FieldReader(v, path: name(key))
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw ConfigError.wrongType(field: name(key), expected: "a string", got: v.typeName) }
        return s
    }

    func int(_ key: String, min: Int? = nil, max: Int? = nil) throws -> Int? {
        guard let v = value(key) else { return nil }
        return try integer(v, field: name(key), min: min, max: max)
    }

    func integer(_ v: JSON, field: String, min: Int?, max: Int?) throws -> Int {
        guard case let .number(d) = v else { throw ConfigError.wrongType(field: field, expected: "an integer", got: v.typeName) }
        guard d == d.rounded(), abs(d) < 9e15 else {
            throw ConfigError.wrongType(field: field, expected: "an integer", got: JSON.format(d))
        }
        let i = Int(d)
        if let min, i < min { throw ConfigError.invalidValue(field: field, reason: "must be at least \(min), got \(i)") }
        if let max, i > max { throw ConfigError.invalidValue(field: field, reason: "must be at most \(max), got \(i)") }
        return i
    }

    func intArray(_ key: String, min: Int) throws -> [Int]? {
        guard let v = value(key) else { return nil }
        guard case let .array(items) = v else {
            throw ConfigError.wrongType(field: name(key), expected: "an array of integers", got: v.typeName)
        }
        return try items.enumerated().map { try integer($1, field: "\(name(key))[\($0)]", min: min, max: 1 << 20) }
    }

    func double(_ key: String, min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false, exclusiveMax: Bool = false) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard case let .number(d) = v else { throw ConfigError.wrongType(field: name(key), expected: "a number", got: v.typeName) }
        if let min, d < min || (exclusiveMin && d == min) {
            throw ConfigError.invalidValue(field: name(key), reason: "must be \(exclusiveMin ? "greater than" : "at least") \(JSON.format(min)), got \(JSON.format(d))")
        }
        if let max, d > max || (exclusiveMax && d == max) {
            throw ConfigError.invalidValue(field: name(key), reason: "must be \(exclusiveMax ? "less than" : "at most") \(JSON.format(max)), got \(JSON.format(d))")
        }
        return d
    }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    var row = Array(0...y.count)
    for i in 1...x.count {
        var prev = row[0]
        row[0] = i
        for j in 1...max(y.count, 1) where !y.isEmpty {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return row[y.count]
}
