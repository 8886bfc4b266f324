import DistTrainIO
import Models

/// One field of the config file: its section and key, JSON type, allowed values, a one-line
/// doc, and how to read it into and out of a `TrainConfig`.
///
/// `TrainConfig.fields` lists every field once. Parsing (`TrainConfig(json:)`), the unknown-field
/// check and its suggestions, the range checks (`TrainConfig.validate`), `config.json`
/// (`TrainConfig.json`) and the README's config reference (`TrainConfig.referenceMarkdown`)
/// are all derived from that list, so a field is added by adding one entry.
public struct ConfigField: Sendable {
    public let section: String
    public let key: String
    /// The JSON type in words, for the reference ("integer", "number", "string", "array of integers").
    public let type: String
    /// The allowed values in words, for the reference ("" when any value of the type is).
    public let allowed: String
    /// One line of Markdown for the reference.
    public let doc: String
    /// The property the field is stored in, when it is one (command-line overrides find their field by it).
    let keyPath: (AnyKeyPath & Sendable)?
    /// Reads the field's JSON value (never null) into a config, checking its type only;
    /// throws `ConfigError.wrongType` naming `field` (or a value the property's type cannot
    /// hold, such as an unknown choice, as `.invalidValue`).
    let parse: @Sendable (_ value: JSON, _ field: String, _ config: inout TrainConfig) throws -> Void
    /// The field's value as written to `config.json`.
    let write: @Sendable (TrainConfig) -> JSON
    /// Why the config's value is not allowed, or nil. `suffix` extends the field's name
    /// (e.g. "[1]" for an array element).
    let check: @Sendable (TrainConfig) -> (suffix: String, reason: String)?

    /// "section.key", the name errors and the reference use.
    public var name: String { section + "." + key }

    /// A field with its own parse, write and check closures: for values the typed
    /// constructors below do not cover, such as an array of objects (use `ConfigObject` to
    /// read each object with the same errors as a section).
    public init(section: String, key: String, type: String, allowed: String = "", doc: String,
                parse: @escaping @Sendable (_ value: JSON, _ field: String, _ config: inout TrainConfig) throws -> Void,
                write: @escaping @Sendable (TrainConfig) -> JSON,
                check: @escaping @Sendable (TrainConfig) -> (suffix: String, reason: String)? = { _ in nil }) {
        self.init(section: section, key: key, type: type, allowed: allowed, doc: doc, keyPath: nil,
                  parse: parse, write: write, check: check)
    }

    init(section: String, key: String, type: String, allowed: String, doc: String, keyPath: (AnyKeyPath & Sendable)?,
         parse: @escaping @Sendable (JSON, String, inout TrainConfig) throws -> Void,
         write: @escaping @Sendable (TrainConfig) -> JSON,
         check: @escaping @Sendable (TrainConfig) -> (suffix: String, reason: String)?) {
        self.section = section
        self.key = key
        self.type = type
        self.allowed = allowed
        self.doc = doc
        self.keyPath = keyPath
        self.parse = parse
        self.write = write
        self.check = check
    }
}

// MARK: Typed fields

extension ConfigField {
    /// The largest integer a field may hold: JSON numbers are exact up to 2^53 - 1, so every
    /// config written to `config.json` reads back the same.
    public static let largestInteger = (1 << 53) - 1

    /// An integer between `min` and `max` (default `largestInteger`).
    static func integer(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, Int> & Sendable,
                        min: Int, max: Int? = nil, doc: String) -> ConfigField {
        let max = max ?? largestInteger
        return ConfigField(
            section: section, key: key, type: "integer", allowed: Self.describeRange(min: min, max: max), doc: doc, keyPath: path,
            parse: { value, field, config in config[keyPath: path] = try Self.readInteger(value, field: field) },
            write: { .number(Double($0[keyPath: path])) },
            check: { config in Self.checkInteger(config[keyPath: path], min: min, max: max).map { ("", $0) } })
    }

    /// An array of integers, each between `min` and `max`.
    static func integers(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, [Int]> & Sendable,
                         min: Int, max: Int, doc: String) -> ConfigField {
        ConfigField(
            section: section, key: key, type: "array of integers", allowed: "each " + Self.describeRange(min: min, max: max),
            doc: doc, keyPath: path,
            parse: { value, field, config in
                guard case let .array(items) = value else {
                    throw ConfigError.wrongType(field: field, expected: "an array of integers", got: value.typeName)
                }
                config[keyPath: path] = try items.enumerated().map { try Self.readInteger($1, field: "\(field)[\($0)]") }
            },
            write: { .array($0[keyPath: path].map { .number(Double($0)) }) },
            check: { config in
                for (i, v) in config[keyPath: path].enumerated() {
                    if let reason = Self.checkInteger(v, min: min, max: max) { return ("[\(i)]", reason) }
                }
                return nil
            })
    }

    /// A finite number with optional bounds, each inclusive unless marked exclusive.
    static func number(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, Double> & Sendable,
                       min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false, exclusiveMax: Bool = false,
                       doc: String) -> ConfigField {
        ConfigField(
            section: section, key: key, type: "number",
            allowed: Self.describeRange(min: min, max: max, exclusiveMin: exclusiveMin, exclusiveMax: exclusiveMax),
            doc: doc, keyPath: path,
            parse: { value, field, config in
                guard case let .number(d) = value else { throw ConfigError.wrongType(field: field, expected: "a number", got: value.typeName) }
                config[keyPath: path] = d
            },
            write: { .number($0[keyPath: path]) },
            check: { config in
                let d = config[keyPath: path]
                guard d.isFinite else { return ("", "must be a finite number, got \(d)") }
                if let min, d < min || (exclusiveMin && d == min) {
                    return ("", "must be \(exclusiveMin ? "greater than" : "at least") \(JSON.format(min)), got \(JSON.format(d))")
                }
                if let max, d > max || (exclusiveMax && d == max) {
                    return ("", "must be \(exclusiveMax ? "less than" : "at most") \(JSON.format(max)), got \(JSON.format(d))")
                }
                return nil
            })
    }

    /// true or false.
    static func boolean(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, Bool> & Sendable,
                        doc: String) -> ConfigField {
        ConfigField(
            section: section, key: key, type: "boolean", allowed: "", doc: doc, keyPath: path,
            parse: { value, field, config in
                guard case let .bool(b) = value else { throw ConfigError.wrongType(field: field, expected: "true or false", got: value.typeName) }
                config[keyPath: path] = b
            },
            write: { .bool($0[keyPath: path]) },
            check: { _ in nil })
    }

    /// A string, optionally required to be non-empty.
    static func string(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, String> & Sendable,
                       nonEmpty: Bool = false, doc: String) -> ConfigField {
        ConfigField(
            section: section, key: key, type: "string", allowed: nonEmpty ? "not empty" : "", doc: doc, keyPath: path,
            parse: { value, field, config in config[keyPath: path] = try Self.readString(value, field: field) },
            write: { .string($0[keyPath: path]) },
            check: { config in nonEmpty && config[keyPath: path].isEmpty ? ("", "must not be empty") : nil })
    }

    /// A string that must be one of `choices`, stored as a string.
    static func choice(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, String> & Sendable,
                       _ choices: [String], doc: String) -> ConfigField {
        ConfigField(
            section: section, key: key, type: "string", allowed: Self.orList(choices), doc: doc, keyPath: path,
            parse: { value, field, config in
                let s = try Self.readString(value, field: field)
                guard choices.contains(s) else { throw ConfigError.invalidValue(field: field, reason: Self.notAChoice(s, choices)) }
                config[keyPath: path] = s
            },
            write: { .string($0[keyPath: path]) },
            check: { config in
                let s = config[keyPath: path]
                return choices.contains(s) ? nil : ("", Self.notAChoice(s, choices))
            })
    }

    /// A string naming one case of `E` (its raw value), every case allowed, in declaration order.
    /// An optional layer stack (array of layer objects), written only when set.
    static func layerStack(_ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, [LayerSpec]?> & Sendable,
                           doc: String) -> ConfigField {
        ConfigField(section: section, key: key, type: "array of layer objects", allowed: "", doc: doc, keyPath: path,
                    parse: { value, field, config in config[keyPath: path] = try LayerStackJSON.stack(value, field: field) },
                    write: { config in config[keyPath: path].map(LayerStackJSON.json) ?? .null },
                    check: { _ in nil })
    }

    static func choice<E: RawRepresentable & CaseIterable & Sendable>(
        _ section: String, _ key: String, _ path: WritableKeyPath<TrainConfig, E> & Sendable, doc: String
    ) -> ConfigField where E.RawValue == String {
        let choices = E.allCases.map(\.rawValue)
        return ConfigField(
            section: section, key: key, type: "string", allowed: Self.orList(choices), doc: doc, keyPath: path,
            parse: { value, field, config in
                let s = try Self.readString(value, field: field)
                guard let e = E(rawValue: s) else { throw ConfigError.invalidValue(field: field, reason: Self.notAChoice(s, choices)) }
                config[keyPath: path] = e
            },
            write: { .string($0[keyPath: path].rawValue) },
            check: { _ in nil })
    }

    // MARK: Pieces shared by the typed fields (and available to custom ones)

    /// An integral JSON number below 9e15 in magnitude (exact in a double).
    public static func readInteger(_ value: JSON, field: String) throws -> Int {
        guard case let .number(d) = value else { throw ConfigError.wrongType(field: field, expected: "an integer", got: value.typeName) }
        guard d == d.rounded(), abs(d) < 9e15 else {
            throw ConfigError.wrongType(field: field, expected: "an integer", got: JSON.format(d))
        }
        return Int(d)
    }

    public static func readString(_ value: JSON, field: String) throws -> String {
        guard case let .string(s) = value else { throw ConfigError.wrongType(field: field, expected: "a string", got: value.typeName) }
        return s
    }

    /// Why `v` is outside min...max, or nil.
    public static func checkInteger(_ v: Int, min: Int, max: Int) -> String? {
        if v < min { return "must be at least \(min), got \(v)" }
        if v > max { return "must be at most \(max), got \(v)" }
        return nil
    }

    static func notAChoice(_ s: String, _ choices: [String]) -> String {
        "must be \(orList(choices)), got \"\(s)\""
    }

    /// "\"a\"", "\"a\" or \"b\"", "\"a\", \"b\" or \"c\"".
    static func orList(_ choices: [String]) -> String {
        let quoted = choices.map { "\"\($0)\"" }
        guard quoted.count > 1 else { return quoted.first ?? "" }
        return quoted.dropLast().joined(separator: ", ") + " or " + quoted.last!
    }

    static func describeRange(min: Int, max: Int) -> String {
        max == largestInteger ? "≥ \(min)" : "\(min) to \(max)"
    }

    static func describeRange(min: Double?, max: Double?, exclusiveMin: Bool, exclusiveMax: Bool) -> String {
        switch (min, max) {
        case let (lo?, hi?): return "\(exclusiveMin ? "(" : "[")\(JSON.format(lo)), \(JSON.format(hi))\(exclusiveMax ? ")" : "]")"
        case let (lo?, nil): return "\(exclusiveMin ? ">" : "≥") \(JSON.format(lo))"
        case let (nil, hi?): return "\(exclusiveMax ? "<" : "≤") \(JSON.format(hi))"
        case (nil, nil): return ""
        }
    }
}

// MARK: The table

extension TrainConfig {
    /// Every config field, in file order (sections in their order of first appearance).
    public static let fields: [ConfigField] = [
        .choice("model", "conditioning", \.model.conditioning,
                doc: "`\"both\"`: CVAE, label into encoder and decoder; `\"decoder\"`: label into the decoder only; `\"none\"`: plain VAE"),
        .integers("model", "encoder_hidden", \.model.encoderHidden, min: 1, max: 1 << 20, doc: "hidden layer widths of the encoder MLP"),
        .integers("model", "decoder_hidden", \.model.decoderHidden, min: 1, max: 1 << 20, doc: "hidden layer widths of the decoder MLP"),
        .integer("model", "latent", \.model.latent, min: 1, max: 4096, doc: "latent dimensions (categories of a categorical latent)"),
        .integer("model", "classes", \.model.classes, min: 1, max: 256, doc: "number of labels (labels must be below it)"),
        .choice("model", "activation", \.model.activation, ["relu", "leaky_relu"], doc: "hidden layer activation"),
        .number("model", "leaky_slope", \.model.leakySlope, min: 0, max: 1, doc: "negative slope of `leaky_relu`"),
        .choice("model", "latent_kind", \.model.latentKind,
                doc: "`\"gaussian\"`, `\"categorical\"` (Gumbel-softmax over `latent` categories), or `\"vq\"` (VQ-VAE: the encoder's output quantized per position to `codebook_size` codes of dimension `latent`)"),
        .layerStack("model", "encoder", \.model.encoder,
                    doc: "explicit encoder layers (replace `encoder_hidden`): objects such as `{\"type\": \"conv2d\", \"out\": 32, \"kernel\": 3, \"stride\": 2, \"padding\": 1}`; see [Layer stacks](#layer-stacks)"),
        .layerStack("model", "decoder", \.model.decoder,
                    doc: "explicit decoder layers from `[z | label]` to the logits (replace `decoder_hidden`)"),
        .choice("model", "reconstruction", \.model.reconstruction,
                doc: "`\"bce\"`: binary cross-entropy of the logits; `\"mse\"`: squared error of their sigmoid (seed 003), summed over pixels"),
        .integer("model", "codebook_size", \.model.codebookSize, min: 1, max: 65_536,
                 doc: "codes K in a VQ-VAE's codebook (latent_kind `vq` only)"),
        .number("model", "commitment", \.model.commitment, min: 0,
                doc: "weight beta of a VQ-VAE's commitment loss: loss = reconstruction + kl_weight (codebook + beta commitment) (latent_kind `vq` only)"),
        .number("model", "codebook_ema", \.model.codebookEMA, min: 0, max: 1, exclusiveMax: true,
                doc: "EMA decay (e.g. 0.99) of a VQ-VAE's codebook updates, their statistics summed over ranks; the codebook is then state, not trained by the gradient (0: gradient codebook loss)"),
        .integer("model", "codebook_restart_steps", \.model.codebookRestartSteps, min: 0, max: 1_000_000,
                 doc: "re-seed a VQ-VAE code that no position of the global batch chose in this many training forwards from an encoder output of the current batch, identically on every rank (0: off)"),

        .string("data", "train_images", \.data.trainImages, doc: "training images: IDX file, gzip or raw"),
        .string("data", "train_labels", \.data.trainLabels, doc: "training labels: IDX file, gzip or raw"),
        .string("data", "test_images", \.data.testImages, doc: "test images, for the test loss"),
        .string("data", "test_labels", \.data.testLabels, doc: "test labels"),
        .choice("data", "binarize", \.data.binarize,
                doc: "`\"none\"`: pixels / 255; `\"dynamic\"`: every training image redrawn as Bernoulli(pixel) pixels each epoch; `\"static\"`: drawn once (epoch 0's draws); draws keyed by (seed, epoch, global sample id, pixel), so the same on any number of ranks. Either mode evaluates on one fixed binarization of the test set (independent of the seed)"),

        .number("optimizer", "lr", \.optimizer.lr, min: 0, exclusiveMin: true, doc: "Adam learning rate"),
        .number("optimizer", "beta1", \.optimizer.beta1, min: 0, max: 1, exclusiveMax: true, doc: "Adam's first-moment decay"),
        .number("optimizer", "beta2", \.optimizer.beta2, min: 0, max: 1, exclusiveMax: true, doc: "Adam's second-moment decay"),
        .number("optimizer", "eps", \.optimizer.eps, min: 0, exclusiveMin: true, doc: "Adam's denominator epsilon"),
        .choice("optimizer", "schedule", \.optimizer.schedule,
                doc: "`cosine`, `linear` (decay to `min_lr` over the run after warmup), `step` (times `step_gamma` every `step_every` steps or `step_every_epochs` epochs), `plateau` (PyTorch's ReduceLROnPlateau on the test loss; state in trainer.json); recomputed every step"),
        .integer("optimizer", "warmup_steps", \.optimizer.warmupSteps, min: 0, doc: "linear warmup from lr/W to the peak over W steps, before any schedule"),
        .number("optimizer", "warmup_epochs", \.optimizer.warmupEpochs, min: 0, doc: "the warmup in epochs (fractions allowed; exclusive with `warmup_steps`)"),
        .number("optimizer", "min_lr", \.optimizer.minLR, min: 0, doc: "floor of cosine / linear decay and of plateau reductions"),
        .integer("optimizer", "step_every", \.optimizer.stepEvery, min: 0, doc: "step decay period in steps"),
        .integer("optimizer", "step_every_epochs", \.optimizer.stepEveryEpochs, min: 0, doc: "step decay period in epochs"),
        .number("optimizer", "step_gamma", \.optimizer.stepGamma, min: 0, max: 1, exclusiveMin: true, doc: "step decay factor"),
        .number("optimizer", "plateau_factor", \.optimizer.plateauFactor, min: 0, max: 1, exclusiveMin: true, exclusiveMax: true, doc: "reduce-on-plateau factor"),
        .integer("optimizer", "plateau_patience", \.optimizer.plateauPatience, min: 0, doc: "epochs without improvement before a reduction"),
        .number("optimizer", "plateau_threshold", \.optimizer.plateauThreshold, min: 0, max: 1, exclusiveMax: true, doc: "relative improvement that counts"),
        .choice("optimizer", "scale_lr", \.optimizer.scaleLR,
                doc: "`linear`: peak lr = lr x global_batch / reference_batch; `sqrt`: lr x its square root (Goyal et al. 2017; pair with a warmup)"),
        .integer("optimizer", "reference_batch", \.optimizer.referenceBatch, min: 1, doc: "the global batch `lr` was tuned for"),
        .number("optimizer", "clip_grad_norm", \.optimizer.clipGradNorm, min: 0, doc: "clip the averaged gradient (after the allreduce) to this global L2 norm, as clip_grad_norm_ (0: off)"),
        .number("optimizer", "weight_decay", \.optimizer.weightDecay, min: 0, doc: "AdamW decoupled weight decay: p <- p (1 - lr wd) before the Adam step"),

        .integer("training", "epochs", \.training.epochs, min: 1, doc: "passes over the training set"),
        .integer("training", "global_batch", \.training.globalBatch, min: 1,
                 doc: "samples per step, summed over ranks; each rank gets `global_batch / world` (the first ranks one more when it does not divide) and must get at least `classes`"),
        .integer("training", "seed", \.training.seed, min: 0, doc: "seeds initialization, sampling order and noise"),
        .number("training", "kl_weight", \.training.klWeight, min: 0, doc: "weight of the KL term (beta-VAE)"),
        .integer("training", "max_steps", \.training.maxSteps, min: 0, doc: "stop after this many steps in total (0: no limit)"),
        .integer("training", "eval_batch", \.training.evalBatch, min: 1, doc: "rows per forward pass when evaluating the test set"),
        .integer("training", "accumulate", \.training.accumulate, min: 1, max: 1 << 20,
                 doc: "micro-batches per rank summed before one allreduce and one step (same result, 1/accumulate the activation memory)"),
        .number("training", "tau_start", \.training.tauStart, min: 0, exclusiveMin: true,
                doc: "Gumbel-softmax temperature at step 0: tau = max(tau_min, tau_start exp(-tau_decay step)) (categorical latents only)"),
        .number("training", "tau_min", \.training.tauMin, min: 0, exclusiveMin: true, doc: "lowest Gumbel-softmax temperature"),
        .number("training", "tau_decay", \.training.tauDecay, min: 0, doc: "Gumbel-softmax temperature decay per step"),

        .string("output", "dir", \.output.dir, nonEmpty: true, doc: "run directory"),
        .integer("output", "grid_every", \.output.gridEvery, min: 0, doc: "write a generation grid every N epochs (0: never)"),
        .integer("output", "animation_ms", \.output.animationMs, min: 0, max: 65_535,
                 doc: "milliseconds per frame of `grids/animation.png`, every epoch's generation grid as one animated PNG (0: none)"),
        .integer("output", "checkpoint_every_steps", \.output.checkpointEverySteps, min: 0,
                 doc: "also checkpoint every N steps (0: only at epoch ends)"),
        .integer("output", "keep_checkpoints", \.output.keepCheckpoints, min: 1, doc: "step checkpoints kept (plus the best)"),

        .integer("runtime", "blas_threads", \.runtime.blasThreads, min: 0, max: 1024,
                 doc: "threads per rank (0: CPUs this rank may use / ranks on this host); who runs them: `runtime.threading`"),
        .choice("runtime", "threading", \.runtime.threading,
                doc: "who runs a rank's `blas_threads` threads: `\"pool\"`, disttrain's pool runs every phase (each matrix product cut into blocks of single-threaded OpenBLAS calls, the elementwise passes and Adam), the same bits for any thread count; `\"openblas\"`, OpenBLAS's own threads run the products and the rest runs on one thread (bits depend on the thread count; OpenBLAS 0.3.21's threaded sgemm can deadlock, see \"Threads\")"),
        .boolean("runtime", "sparse_inputs", \.runtime.sparseInputs,
                 doc: "a Linear layer whose input batch is at most 30% nonzeros (MNIST pixels, ReLU outputs after the first layer) multiplies only the nonzeros in its forward and weight gradient (about twice as fast there; other bits than the dense sgemm); `false`: always the dense sgemm"),
        .integer("runtime", "checksum_every", \.runtime.checksumEvery, min: 0,
                 doc: "debug: compare a parameter checksum across ranks every N steps, stop on drift"),
        .choice("runtime", "allreduce", \.runtime.allreduce,
                doc: "`\"overlap\"`: gradient buckets reduced with `MPI_Iallreduce` while backward runs; `\"single\"`: one blocking `MPI_Allreduce` after backward"),
        .number("runtime", "bucket_mb", \.runtime.bucketMB, min: 0, exclusiveMin: true,
                doc: "target bucket size for `\"overlap\"` (MiB of float32 gradients; cut at layer boundaries)"),
        .choice("runtime", "wire", \.runtime.wire,
                doc: "`\"bf16\"` sends gradients as bfloat16 (half the bytes), every addition in float32"),
        .choice("runtime", "batchnorm", \.runtime.batchnorm,
                doc: "`\"sync\"`: BatchNorm statistics summed over all ranks (SyncBN, the same as one rank with the whole batch); `\"local\"`: each rank's own rows (plain DDP)"),
        .boolean("runtime", "shard_optimizer", \.runtime.shardOptimizer,
                 doc: "ZeRO stage 1: gradients reduce-scattered (with `allreduce` `\"overlap\"` one `MPI_Ireduce_scatter` per bucket during backward), each rank runs Adam on its 1/N slice of the parameters and moments, parameters allgathered; checkpoints keep the full format"),
        .boolean("runtime", "overlap_allgather", \.runtime.overlapAllgather,
                 doc: "with `shard_optimizer` and `allreduce` `\"overlap\"`: the parameter allgather after Adam runs as one `MPI_Iallgatherv` per bucket, first layers first, and the next step's forward waits for each just before a layer reads it; false: one blocking allgather after Adam (deterministic mode always blocks)"),
        .number("runtime", "stall_timeout_s", \.runtime.stallTimeoutS, min: 0,
                doc: "stop the job (exit status 76) when a rank has not reached a collective for this many seconds; a warning names it at half the time (0: no stall watchdog)"),
        .boolean("runtime", "deterministic", \.runtime.deterministic,
                 doc: "the same model bits at 1, 2, 3, 4, 6, 8, 12 or 24 ranks, any BLAS thread count and across kill/resume (24 virtual shards, one gradient per shard's share of the batch, exact fixed-point sums; with `threading: \"openblas\"` one thread per rank); global batch at least 24 x classes; see \"Deterministic mode\""),
    ]

    /// The section names, in the order of `fields`.
    public static var sections: [String] { sections(of: fields) }

    static func sections(of fields: [ConfigField]) -> [String] {
        var names: [String] = []
        for f in fields where !names.contains(f.section) { names.append(f.section) }
        return names
    }

    /// The field stored in `path`, if one is.
    public static func field(for path: AnyKeyPath) -> ConfigField? {
        fields.first { $0.keyPath == path }
    }

    /// The field named "section.key", if there is one.
    public static func field(named name: String) -> ConfigField? {
        fields.first { $0.name == name }
    }
}

// MARK: The README's reference

extension TrainConfig {
    /// The README's "Config reference" section (heading to the end of its table), generated
    /// from `fields`; `disttrain config-reference` prints it and a test keeps README.md equal.
    public static var referenceMarkdown: String {
        let defaults = TrainConfig()
        var lines = [
            "## Config reference",
            "",
            "A JSON object with up to \(sections.count) sections, \(sections.map { "`\($0)`" }.joined(separator: ", ")).",
            "Every field is optional and defaults to the seed recipe (`configs/cvae.json` spells them",
            "all out). Unknown fields, wrong types and values outside \"allowed\" stop the job with one",
            "line naming the field; integers are at most 2^53 - 1 (\(ConfigField.largestInteger), exact in",
            "JSON). The options that override a field (`--epochs`, `--batch-size`, `--lr`, `--seed`,",
            "`--out`, `--max-steps`, `--threads`, `--checksum-every`) get the same check, and an error",
            "names the option. Relative paths are relative to the working directory. This section is",
            "generated from `TrainConfig.fields` (Sources/DistTrain/Training/ConfigFields.swift) by",
            "`disttrain config-reference`; a test keeps them equal.",
            "",
            "| field | type | default | allowed | meaning |",
            "|---|---|---|---|---|",
        ]
        for f in fields {
            var value = f.write(defaults).pretty
            if value.hasSuffix("\n") { value.removeLast() }
            lines.append("| `\(f.name)` | \(f.type) | `\(value)` | \(f.allowed.isEmpty ? "any" : f.allowed) | \(f.doc) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
