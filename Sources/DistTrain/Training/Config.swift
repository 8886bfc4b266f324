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
    /// A command-line option that sets a config field gave a value the field does not allow.
    case invalidOption(option: String, field: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "config \(path): cannot read: \(reason)"
        case let .syntax(path, reason): return "config \(path): \(reason)"
        case let .notAnObject(path): return "config \(path): the top level must be a JSON object"
        case let .unknownField(field, suggestion):
            return "config: unknown field \"\(field)\"" + (suggestion.map { " (did you mean \"\($0)\"?)" } ?? "")
        case let .wrongType(field, expected, got): return "config: \"\(field)\" must be \(expected), got \(got)"
        case let .invalidValue(field, reason): return "config: \"\(field)\" \(reason)"
        case let .invalidOption(option, field, reason): return "\(option) (\(field)) \(reason)"
        }
    }
}

/// Everything a training run needs. Defaults reproduce seed 000's CVAE recipe. The file's
/// fields, their limits and docs are listed once, in `TrainConfig.fields` (ConfigFields.swift);
/// the README's config reference is generated from that list.
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
        /// Explicit layer stacks (conv, BatchNorm, dropout, ...); when set they replace
        /// encoder_hidden / decoder_hidden / activation (see `LayerStackJSON`).
        public var encoder: [LayerSpec]?
        public var decoder: [LayerSpec]?
        /// Reconstruction term: BCE on the logits, or squared error of their sigmoid.
        public var reconstruction: Reconstruction = .bce
        /// [vq] K, codes in a VQ-VAE's codebook, and the weight of its commitment loss.
        public var codebookSize = 512
        public var commitment: Double = 0.25
        /// [vq] EMA decay of the codebook (0: the codebook follows the gradient).
        public var codebookEMA: Double = 0
        /// [vq] Training forwards without an assignment after which a code is re-seeded (0: off).
        public var codebookRestartSteps = 0
        public init() {}
    }

    public struct Data: Equatable, Sendable {
        public var trainImages = "data/mnist/train-images-idx3-ubyte.gz"
        public var trainLabels = "data/mnist/train-labels-idx1-ubyte.gz"
        public var testImages = "data/mnist/t10k-images-idx3-ubyte.gz"
        public var testLabels = "data/mnist/t10k-labels-idx1-ubyte.gz"
        /// Pixels as intensities, or Bernoulli draws redrawn every epoch / drawn once (`Binarization`).
        public var binarize: Binarization = .none
        public init() {}
    }

    public struct Optimizer: Equatable, Sendable {
        public var lr: Double = 1e-3
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var eps: Double = 1e-8
        /// Learning-rate schedule: constant, warmup then cosine / linear / step decay, or
        /// reduce-on-plateau of the test loss (see `LRSchedule`).
        public var schedule: LRScheduleKind = .constant
        /// Linear warmup from lr / warmup to the peak lr, in steps or in epochs (at most one set).
        public var warmupSteps = 0
        public var warmupEpochs: Double = 0
        /// Floor of the cosine / linear decay and of reduce-on-plateau.
        public var minLR: Double = 0
        /// Step decay: multiply by `stepGamma` every `stepEvery` steps (or `stepEveryEpochs` epochs).
        public var stepEvery = 0
        public var stepEveryEpochs = 0
        public var stepGamma: Double = 0.1
        /// Reduce-on-plateau (PyTorch's ReduceLROnPlateau, mode min, relative threshold).
        public var plateauFactor: Double = 0.1
        public var plateauPatience = 10
        public var plateauThreshold: Double = 1e-4
        /// Batch-size scaling of the lr against `referenceBatch` (Goyal et al. 2017).
        public var scaleLR: LRScaling = .none
        public var referenceBatch = 256
        /// Clip the averaged gradient to this global L2 norm (0: off).
        public var clipGradNorm: Double = 0
        /// AdamW-style decoupled weight decay (0: plain Adam).
        public var weightDecay: Double = 0
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
        /// Milliseconds per frame of RUN/grids/animation.png, the generation grids of every
        /// epoch so far as one animated PNG (0: no animation).
        public var animationMs = 400
        /// Also checkpoint every this many steps (0: only at epoch ends).
        public var checkpointEverySteps = 0
        /// Step checkpoints to keep (the best one is kept as well).
        public var keepCheckpoints = 3
        public init() {}
    }

    public struct Runtime: Equatable, Sendable {
        /// OpenBLAS threads per rank (0: cores on this host / ranks on this host).
        public var blasThreads = 0
        /// Who runs the rank's threads: disttrain's pool (every phase, the same bits for any thread
        /// count) or OpenBLAS's threads (products only).
        public var threading: ThreadingMode = .pool
        /// Linear layers multiply only the nonzeros of inputs that are mostly zeros (pixels,
        /// ReLU outputs), decided per batch; false: always the dense sgemm.
        public var sparseInputs = true
        /// Compare a parameter checksum across ranks every this many steps (0: off).
        public var checksumEvery = 0
        /// "overlap": gradient buckets reduced with MPI_Iallreduce while backward runs;
        /// "single": one blocking MPI_Allreduce after backward.
        public var allreduce: AllreduceMode = .overlap
        /// Target bucket size for "overlap", in MiB of float32 gradients.
        public var bucketMB: Double = 1
        /// "fp32", or "bf16" to send gradients as bfloat16 (added in float32).
        public var wire: WirePrecision = .fp32
        /// ZeRO stage 1: each rank keeps and updates 1/N of the Adam moments (reduce-scatter
        /// of the gradients, allgather of the parameters).
        public var shardOptimizer = false
        /// ZeRO-1 with `allreduce` "overlap": the parameter allgather runs per bucket while the
        /// next step's forward waits layer by layer (false: one blocking allgather after Adam).
        public var overlapAllgather = true
        /// BatchNorm statistics: "sync" sums them over every rank (N ranks compute what one
        /// rank with the whole batch computes); "local" uses each rank's own rows (plain DDP).
        public var batchnorm: BatchNormStatistics = .sync
        /// Seconds a rank may wait in one collective for another rank before the job stops
        /// (a warning at half; 0: no stall watchdog).
        public var stallTimeoutS: Double = 300
        /// Deterministic data-parallel training: the trained weights are the same bits at 1, 2,
        /// 3, 4, 6, 8, 12 or 24 ranks, any BLAS thread count, and across kill/resume at any of
        /// them (virtual shards, per-piece gradients, exact fixed-point sums; see README).
        public var deterministic = false
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

/// A command-line option that sets one config field (`--epochs 3` sets training.epochs).
public struct ConfigOverride {
    public let option: String
    /// The field's name, "section.key".
    public let field: String
    let apply: (inout TrainConfig) -> Void

    /// `option` sets the field stored at `path` (which must be one of `TrainConfig.fields`) to `value`.
    public init<T>(_ option: String, _ path: WritableKeyPath<TrainConfig, T>, _ value: T) {
        guard let field = TrainConfig.field(for: path) else { preconditionFailure("\(option): no config field is stored at \(path)") }
        self.option = option
        self.field = field.name
        apply = { $0[keyPath: path] = value }
    }
}

// MARK: Parsing

extension TrainConfig {
    /// Reads and validates a config file.
    public static func load(path: String) throws -> TrainConfig {
        try load(path: path, overrides: [])
    }

    /// Reads a config file (nil: the defaults), applies command-line overrides, then checks
    /// every field once, so an option gets the same limits as its field; an error about a
    /// value an option set names the option.
    public static func load(path: String?, overrides: [ConfigOverride]) throws -> TrainConfig {
        var config = try path.map(decodeFile(path:)) ?? TrainConfig()
        for o in overrides { o.apply(&config) }
        try config.validate(options: Dictionary(overrides.map { ($0.field, $0.option) }, uniquingKeysWith: { $1 }))
        try config.checkPaths()
        return config
    }

    /// Checks one option's value against the limits of the field it names, alone: for
    /// commands that take such an option without a config (eval's --threads).
    public static func check(_ option: ConfigOverride) throws {
        var config = TrainConfig()
        option.apply(&config)
        try config.validate(options: [option.field: option.option], fields: fields.filter { $0.name == option.field })
    }

    /// A config file's fields, names and types checked, values not yet.
    static func decodeFile(path: String) throws -> TrainConfig {
        let bytes: [UInt8]
        // Capped: a config is a few hundred bytes; /dev/zero or a huge file stops at the cap.
        do { bytes = try FileBytes.read(path, limit: TrainConfig.maxFileBytes) } catch { throw ConfigError.unreadable(path: path, reason: "\(error)") }
        let json: JSON
        do { json = try JSON.parse(bytes: bytes) } catch let e as JSONSyntaxError {
            throw ConfigError.syntax(path: path, reason: e.description)
        }
        guard case .object = json else { throw ConfigError.notAnObject(path: path) }
        return try TrainConfig.decode(json)
    }

    /// Builds a config from parsed JSON (missing fields keep their defaults) and checks it.
    public init(json: JSON) throws {
        self = try TrainConfig.decode(json)
        try validate()
    }

    /// Builds a config from parsed JSON, checking names and types but not values (`validate()`
    /// does that), so that overrides can be applied before the one check.
    public static func decode(_ json: JSON, fields: [ConfigField] = TrainConfig.fields) throws -> TrainConfig {
        var config = TrainConfig()
        let root = try ConfigObject(json, path: "")
        let sections = TrainConfig.sections(of: fields)
        try root.only(sections)
        for section in sections {
            guard let object = try root.section(section) else { continue }
            let mine = fields.filter { $0.section == section }
            try object.only(mine.map(\.key))
            for field in mine {
                if let value = object.value(field.key) { try field.parse(value, object.name(field.key), &config) }
            }
        }
        return config
    }

    /// Checks every field against its limits, in table order; the first value out of bounds
    /// throws `ConfigError.invalidValue`, or `.invalidOption` when `options` names the
    /// command-line option that set it (keyed by field name, e.g. "training.epochs": "--epochs").
    public func validate(options: [String: String] = [:], fields: [ConfigField] = TrainConfig.fields) throws {
        for field in fields {
            guard let (suffix, reason) = field.check(self) else { continue }
            if let option = options[field.name] {
                throw ConfigError.invalidOption(option: option, field: field.name + suffix, reason: reason)
            }
            throw ConfigError.invalidValue(field: field.name + suffix, reason: reason)
        }
    }

    /// The model architecture for inputs of `inputDim` pixels.
    public func architecture(inputDim: Int) -> VAEArchitecture {
        architecture(rows: 1, cols: inputDim)
    }

    /// The model for images of rows x cols pixels: today's MLP from the hidden widths, or the
    /// explicit layer stacks (whose first layer decides whether they see an image or a vector).
    public func architecture(rows: Int, cols: Int) -> VAEArchitecture {
        if model.encoder != nil || model.decoder != nil {
            let encoder = model.encoder ?? VAEArchitecture.mlp(model.encoderHidden, .relu)
            let decoder = model.decoder ?? (VAEArchitecture.mlp(model.decoderHidden, .relu) + [.linear(out: rows * cols)])
            let image: Bool
            switch encoder.first {
            case .conv2d?, .convTranspose2d?: image = true
            default: image = false
            }
            var a = VAEArchitecture(inputShape: image ? TensorShape(1, rows, cols) : .flat(rows * cols), classes: model.classes,
                                    encoder: encoder, decoder: decoder, latent: model.latent,
                                    conditioning: model.conditioning, latentKind: model.latentKind,
                                    reconstruction: model.reconstruction)
            a.codebookSize = model.codebookSize  // [vq]
            a.commitment = Float(model.commitment)
            a.codebookEMA = Float(model.codebookEMA)
            a.codebookRestartSteps = model.codebookRestartSteps
            return a
        }
        var a = VAEArchitecture(inputDim: rows * cols, classes: model.classes, encoderHidden: model.encoderHidden,
                                decoderHidden: model.decoderHidden, latent: model.latent,
                                activation: model.activation == "leaky_relu" ? .leakyReLU(slope: Float(model.leakySlope)) : .relu,
                                conditioning: model.conditioning, latentKind: model.latentKind)
        a.reconstruction = model.reconstruction
        return a
    }

    /// The whole config as JSON, in the file's own schema (written into every run directory).
    public var json: JSON {
        .object(TrainConfig.sections.map { section in
            // A field written as null is not set (the layer stacks of an MLP model): left out.
            (section, .object(TrainConfig.fields.filter { $0.section == section }.compactMap { f in
                let v = f.write(self)
                if case .null = v { return nil }
                return (f.key, v)
            }))
        })
    }
}

/// One JSON object of a config (the top level, a section, or an object inside a custom
/// field), with errors that name the dotted field.
struct ConfigObject {
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

    /// The value of `key`; null counts as absent.
    func value(_ key: String) -> JSON? {
        guard let v = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        if case .null = v { return nil }
        return v
    }

    func section(_ key: String) throws -> ConfigObject? {
        guard let v = value(key) else { return nil }
        return try ConfigObject(v, path: name(key))
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
