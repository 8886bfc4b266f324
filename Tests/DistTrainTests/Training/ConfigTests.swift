import Foundation
import Testing
@testable import DistTrain
@testable import DistTrainIO

struct ConfigTests {
    func parse(_ text: String) throws -> TrainConfig { try TrainConfig(json: try JSON.parse(text)) }

    @Test("defaults reproduce the seed recipe and configs/cvae.json says the same")
    func defaults() throws {
        let c = TrainConfig()
        #expect(c.model.encoderHidden == [512, 512] && c.model.decoderHidden == [512, 512] && c.model.latent == 16)
        #expect(c.training.globalBatch == 256 && c.training.epochs == 50 && c.training.seed == 0)
        #expect(c.optimizer.lr == 1e-3 && c.optimizer.beta1 == 0.9 && c.optimizer.beta2 == 0.999 && c.optimizer.eps == 1e-8)
        let file = try TrainConfig.load(path: Support.root + "/configs/cvae.json")
        #expect(file == c)
    }

    @Test("the config survives a JSON round trip")
    func roundTrip() throws {
        var c = TrainConfig()
        c.model.activation = "leaky_relu"
        c.model.conditioning = .decoder
        c.training.klWeight = 10
        c.output.dir = "x/y"
        #expect(try TrainConfig(json: try JSON.parse(c.json.serialized)) == c)
    }

    @Test("unknown fields are named, with a suggestion")
    func unknownField() {
        #expect(throws: ConfigError.unknownField(field: "training.epoch", suggestion: "training.epochs")) {
            try parse(#"{"training": {"epoch": 3}}"#)
        }
        #expect(throws: ConfigError.unknownField(field: "modle", suggestion: "model")) { try parse(#"{"modle": {}}"#) }
        #expect(throws: ConfigError.unknownField(field: "model.zzzzzzzz", suggestion: nil)) { try parse(#"{"model": {"zzzzzzzz": 1}}"#) }
    }

    @Test("wrong types are named")
    func wrongTypes() {
        #expect(throws: ConfigError.wrongType(field: "model.latent", expected: "an integer", got: "a string")) {
            try parse(#"{"model": {"latent": "16"}}"#)
        }
        #expect(throws: ConfigError.wrongType(field: "training.global_batch", expected: "an integer", got: "2.5")) {
            try parse(#"{"training": {"global_batch": 2.5}}"#)
        }
        #expect(throws: ConfigError.wrongType(field: "model.encoder_hidden", expected: "an array of integers", got: "a number")) {
            try parse(#"{"model": {"encoder_hidden": 512}}"#)
        }
        #expect(throws: ConfigError.wrongType(field: "model", expected: "an object", got: "an array")) { try parse(#"{"model": []}"#) }
    }

    @Test("impossible values are named")
    func impossibleValues() {
        #expect(throws: ConfigError.invalidValue(field: "model.latent", reason: "must be at least 1, got 0")) {
            try parse(#"{"model": {"latent": 0}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "model.encoder_hidden[1]", reason: "must be at least 1, got 0")) {
            try parse(#"{"model": {"encoder_hidden": [512, 0]}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "optimizer.lr", reason: "must be greater than 0, got 0")) {
            try parse(#"{"optimizer": {"lr": 0}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "optimizer.beta2", reason: "must be less than 1, got 1")) {
            try parse(#"{"optimizer": {"beta2": 1}}"#)
        }
        #expect(throws: (any Error).self) { try parse(#"{"model": {"activation": "tanh"}}"#) }
        #expect(throws: (any Error).self) { try parse(#"{"model": {"conditioning": "label"}}"#) }
    }

    @Test("syntax errors and unreadable files name the path")
    func fileErrors() throws {
        let path = NSTemporaryDirectory() + "bad-\(UInt32.random(in: 0...UInt32.max)).json"
        try AtomicFile.write(Array("{\"model\": ".utf8), to: path)
        let error = #expect(throws: ConfigError.self) { try TrainConfig.load(path: path) }
        #expect(error.map { "\($0)".contains(path) } == true, "error \(String(describing: error)) should name \(path)")
        #expect(throws: ConfigError.self) { try TrainConfig.load(path: "/nonexistent/cfg.json") }
    }

    /// config.json of the defaults as the hand-written writer produced it before the field table.
    static let defaultJSON = """
    {
      "model": {
        "conditioning": "both",
        "encoder_hidden": [512, 512],
        "decoder_hidden": [512, 512],
        "latent": 16,
        "classes": 10,
        "activation": "relu",
        "leaky_slope": 0.2,
        "latent_kind": "gaussian",
        "reconstruction": "bce",
        "codebook_size": 512,
        "commitment": 0.25,
        "codebook_ema": 0,
        "codebook_restart_steps": 0
      },
      "data": {
        "train_images": "data/mnist/train-images-idx3-ubyte.gz",
        "train_labels": "data/mnist/train-labels-idx1-ubyte.gz",
        "test_images": "data/mnist/t10k-images-idx3-ubyte.gz",
        "test_labels": "data/mnist/t10k-labels-idx1-ubyte.gz",
        "binarize": "none"
      },
      "optimizer": {
        "lr": 0.001,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-08,
        "schedule": "constant",
        "warmup_steps": 0,
        "warmup_epochs": 0,
        "min_lr": 0,
        "step_every": 0,
        "step_every_epochs": 0,
        "step_gamma": 0.1,
        "plateau_factor": 0.1,
        "plateau_patience": 10,
        "plateau_threshold": 0.0001,
        "scale_lr": "none",
        "reference_batch": 256,
        "clip_grad_norm": 0,
        "weight_decay": 0
      },
      "training": {
        "epochs": 50,
        "global_batch": 256,
        "seed": 0,
        "kl_weight": 1,
        "max_steps": 0,
        "eval_batch": 500,
        "accumulate": 1,
        "tau_start": 1,
        "tau_min": 0.5,
        "tau_decay": 3e-05
      },
      "output": {
        "dir": "runs/cvae",
        "grid_every": 1,
        "animation_ms": 400,
        "checkpoint_every_steps": 0,
        "keep_checkpoints": 3
      },
      "runtime": {
        "blas_threads": 0,
        "threading": "pool",
        "sparse_inputs": true,
        "checksum_every": 0,
        "allreduce": "overlap",
        "bucket_mb": 1,
        "wire": "fp32",
        "batchnorm": "sync",
        "shard_optimizer": false,
        "overlap_allgather": true,
        "stall_timeout_s": 300,
        "deterministic": false
      }
    }

    """

    @Test("config.json written from the field table: every field, in table order, in the old writer's format")
    func writtenJSON() throws {
        #expect(TrainConfig().json.pretty == Self.defaultJSON)
        // Every field is written, each once, and every config in configs/ survives a round trip.
        #expect(Set(TrainConfig.fields.map(\.name)).count == TrainConfig.fields.count)
        let files = try FileManager.default.contentsOfDirectory(atPath: Support.root + "/configs").filter { $0.hasSuffix(".json") }
        #expect(files.count >= 8)
        for file in files {
            let c = try TrainConfig.load(path: Support.root + "/configs/" + file)
            #expect(try TrainConfig(json: try JSON.parse(c.json.pretty)) == c, "\(file)")
        }
    }

    @Test("README.md's config reference is the one generated from the field table")
    func readmeReference() throws {
        let readme = try String(contentsOfFile: Support.root + "/README.md", encoding: .utf8)
        let generated = TrainConfig.referenceMarkdown
        let start = try #require(readme.range(of: "## Config reference\n"), "README.md has no config reference section")
        let rest = readme[start.lowerBound...]
        let end = rest.range(of: "\n## ", range: rest.index(after: rest.startIndex)..<rest.endIndex)?.lowerBound ?? rest.endIndex
        let section = String(rest[..<end]).trimmingCharacters(in: .newlines) + "\n"
        #expect(section == generated, "regenerate it: disttrain config-reference")
        for f in TrainConfig.fields { #expect(generated.contains("| `\(f.name)` |")) }
    }

    @Test("options that override fields are checked with the field's limits, once, and named")
    func overrides() throws {
        #expect(throws: ConfigError.invalidOption(option: "--threads", field: "runtime.blas_threads",
                                                  reason: "must be at most 1024, got 2147483647")) {
            try TrainConfig.load(path: nil, overrides: [ConfigOverride("--threads", \.runtime.blasThreads, 2_147_483_647)])
        }
        #expect(throws: ConfigError.invalidOption(option: "--epochs", field: "training.epochs",
                                                  reason: "must be at most 9007199254740991, got \(Int.max)")) {
            try TrainConfig.load(path: nil, overrides: [ConfigOverride("--epochs", \.training.epochs, Int.max)])
        }
        #expect(throws: ConfigError.invalidOption(option: "--lr", field: "optimizer.lr", reason: "must be a finite number, got inf")) {
            try TrainConfig.load(path: nil, overrides: [ConfigOverride("--lr", \.optimizer.lr, .infinity)])
        }
        #expect(throws: ConfigError.invalidOption(option: "--out", field: "output.dir", reason: "must not be empty")) {
            try TrainConfig.load(path: nil, overrides: [ConfigOverride("--out", \.output.dir, "")])
        }
        // The same value from the file is named as the field.
        #expect(throws: ConfigError.invalidValue(field: "runtime.blas_threads", reason: "must be at most 1024, got 2048")) {
            try parse(#"{"runtime": {"blas_threads": 2048}}"#)
        }
        // An option replaces the file's value before the check.
        let c = try TrainConfig.load(path: Support.root + "/configs/cvae.json",
                                     overrides: [ConfigOverride("--epochs", \.training.epochs, 2), ConfigOverride("--threads", \.runtime.blasThreads, 1024)])
        #expect(c.training.epochs == 2 && c.runtime.blasThreads == 1024)
        // A value set in code is checked too.
        var bad = TrainConfig()
        bad.model.activation = "tanh"
        #expect(throws: ConfigError.invalidValue(field: "model.activation", reason: #"must be "relu" or "leaky_relu", got "tanh""#)) {
            try bad.validate()
        }
    }

    @Test("a custom field can hold an array of objects")
    func customField() throws {
        // model.layers: [{"width": N}, ...], stored in encoderHidden.
        let layers = ConfigField(
            section: "model", key: "layers", type: "array of objects", doc: "encoder layers",
            parse: { value, field, config in
                guard case let .array(items) = value else {
                    throw ConfigError.wrongType(field: field, expected: "an array of objects", got: value.typeName)
                }
                config.model.encoderHidden = try items.enumerated().map { i, item in
                    let object = try ConfigObject(item, path: "\(field)[\(i)]")
                    try object.only(["width"])
                    guard let w = object.value("width") else {
                        throw ConfigError.invalidValue(field: object.name("width"), reason: "is required")
                    }
                    return try ConfigField.readInteger(w, field: object.name("width"))
                }
            },
            write: { .array($0.model.encoderHidden.map { .object([("width", .number(Double($0)))]) }) },
            check: { config in
                for (i, w) in config.model.encoderHidden.enumerated() {
                    if let r = ConfigField.checkInteger(w, min: 1, max: 1 << 20) { return ("[\(i)].width", r) }
                }
                return nil
            })
        let fields = [layers] + TrainConfig.fields  // its check before encoder_hidden's, which sees the same values
        func read(_ text: String) throws -> TrainConfig {
            let c = try TrainConfig.decode(try JSON.parse(text), fields: fields)
            try c.validate(fields: fields)
            return c
        }
        let c = try read(#"{"model": {"layers": [{"width": 8}, {"width": 4}]}}"#)
        #expect(c.model.encoderHidden == [8, 4])
        #expect(layers.write(c).serialized == #"[{"width":8},{"width":4}]"#)
        #expect(throws: ConfigError.unknownField(field: "model.layers[1].widht", suggestion: "model.layers[1].width")) {
            try read(#"{"model": {"layers": [{"width": 8}, {"widht": 4}]}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "model.layers[1].width", reason: "must be at least 1, got 0")) {
            try read(#"{"model": {"layers": [{"width": 8}, {"width": 0}]}}"#)
        }
        #expect(throws: ConfigError.unknownField(field: "model.layer", suggestion: "model.layers")) {
            try read(#"{"model": {"layer": []}}"#)
        }
    }
}
