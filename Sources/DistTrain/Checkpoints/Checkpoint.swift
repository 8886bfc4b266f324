import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// A checkpoint that cannot be used.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missing(path: String)
    case notDisttrain(path: String)
    case architectureMismatch(path: String, detail: String)
    case badState(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missing(path): return "checkpoint \(path): not found"
        case let .notDisttrain(path): return "checkpoint \(path): no disttrain model config in its metadata"
        case let .architectureMismatch(path, detail): return "checkpoint \(path): different architecture: \(detail)"
        case let .badState(path, reason): return "checkpoint \(path): \(reason)"
        }
    }
}

/// Where training stands: everything besides the buffers that a resume needs. Sampling order
/// and noise are pure functions of (seed, epoch, rank, step), so no generator state exists
/// beyond these counters.
public struct TrainerState: Equatable, Sendable {
    /// Epoch in progress (0-based) and steps of it already taken.
    public var epoch = 0
    public var stepInEpoch = 0
    /// Optimizer steps taken in total.
    public var globalStep = 0
    public var worldSize = 1
    public var seed = 0
    /// Running sums of the epoch in progress, so a resumed epoch reports the same train loss.
    public var epochBCE = 0.0
    public var epochKL = 0.0
    public var epochSamples = 0
    /// Best test loss so far and the checkpoint that holds it.
    public var bestTestLoss = Double.infinity
    public var bestCheckpoint = ""
    public var configHash = ""
    public var dataHash = ""

    public init() {}

    public var json: JSON {
        .object([
            ("format", "disttrain.trainer.v1"),
            ("epoch", .number(Double(epoch))),
            ("step_in_epoch", .number(Double(stepInEpoch))),
            ("global_step", .number(Double(globalStep))),
            ("world_size", .number(Double(worldSize))),
            ("rng", .object([
                ("kind", "counter-based: sampler order from (seed, epoch, rank), noise from (seed, step, sample id)"),
                ("seed", .number(Double(seed))),
                ("sampler_epoch", .number(Double(epoch))),
                ("noise_counter", .number(Double(globalStep))),
            ])),
            ("epoch_sums", .object([
                ("bce", .number(epochBCE)), ("kl", .number(epochKL)), ("samples", .number(Double(epochSamples))),
            ])),
            ("best", .object([
                ("test_loss", bestTestLoss.isFinite ? .number(bestTestLoss) : .null),
                ("checkpoint", .string(bestCheckpoint)),
            ])),
            ("config_hash", .string(configHash)),
            ("data_hash", .string(dataHash)),
        ])
    }

    public init(json: JSON, path: String) throws {
        func int(_ v: JSON?, _ name: String) throws -> Int {
            guard case let .number(d)? = v, d >= 0, d == d.rounded() else {
                throw CheckpointError.badState(path: path, reason: "trainer.json: \"\(name)\" missing or not a non-negative integer")
            }
            return Int(d)
        }
        func num(_ v: JSON?, _ name: String) throws -> Double {
            guard case let .number(d)? = v else { throw CheckpointError.badState(path: path, reason: "trainer.json: \"\(name)\" missing") }
            return d
        }
        guard json["format"] == .string("disttrain.trainer.v1") else {
            throw CheckpointError.badState(path: path, reason: "trainer.json: not a disttrain trainer state")
        }
        epoch = try int(json["epoch"], "epoch")
        stepInEpoch = try int(json["step_in_epoch"], "step_in_epoch")
        globalStep = try int(json["global_step"], "global_step")
        worldSize = try int(json["world_size"], "world_size")
        seed = try int(json["rng"]?["seed"], "rng.seed")
        epochBCE = try num(json["epoch_sums"]?["bce"], "epoch_sums.bce")
        epochKL = try num(json["epoch_sums"]?["kl"], "epoch_sums.kl")
        epochSamples = try int(json["epoch_sums"]?["samples"], "epoch_sums.samples")
        if case let .number(b)? = json["best"]?["test_loss"] { bestTestLoss = b }
        if case let .string(s)? = json["best"]?["checkpoint"] { bestCheckpoint = s }
        if case let .string(s)? = json["config_hash"] { configHash = s }
        if case let .string(s)? = json["data_hash"] { dataHash = s }
    }
}

/// The model architecture as checkpoint metadata: a JSON string under "config", so a
/// checkpoint alone says how to rebuild its model.
public enum ModelMetadata {
    public static let format = "disttrain.vae.v1"

    public static func json(_ a: VAEArchitecture) -> JSON {
        var activation = "relu", slope = 0.0
        if case let .leakyReLU(s) = a.activation { activation = "leaky_relu"; slope = Double(s) }
        return .object([
            ("input_dim", .number(Double(a.inputDim))),
            ("classes", .number(Double(a.classes))),
            ("conditioning", .string(a.conditioning.rawValue)),
            ("encoder_hidden", .array(a.encoderHidden.map { .number(Double($0)) })),
            ("decoder_hidden", .array(a.decoderHidden.map { .number(Double($0)) })),
            ("latent", .number(Double(a.latent))),
            ("activation", .string(activation)),
            ("leaky_slope", .number(slope)),
            ("latent_kind", .string(a.latentKind.rawValue)),  // [gumbel]
            ("encoder_input", "[pixels/255 | one-hot label] (label only when conditioning is both)"),
            ("decoder_input", "[z | one-hot label] (label unless conditioning is none)"),
        ])
    }

    /// Rebuilds the architecture from a checkpoint's metadata.
    public static func architecture(from metadata: [String: String], path: String) throws -> VAEArchitecture {
        guard metadata["format"] == format, let text = metadata["config"], let j = try? JSON.parse(text) else {
            throw CheckpointError.notDisttrain(path: path)
        }
        func ints(_ key: String) throws -> [Int] {
            guard case let .array(items)? = j[key] else { throw CheckpointError.notDisttrain(path: path) }
            return try items.map {
                guard case let .number(d) = $0, d >= 1, d == d.rounded() else { throw CheckpointError.notDisttrain(path: path) }
                return Int(d)
            }
        }
        func int(_ key: String) throws -> Int {
            guard case let .number(d)? = j[key], d >= 1, d == d.rounded() else { throw CheckpointError.notDisttrain(path: path) }
            return Int(d)
        }
        guard case let .string(c)? = j["conditioning"], let conditioning = Conditioning(rawValue: c),
              case let .string(act)? = j["activation"] else { throw CheckpointError.notDisttrain(path: path) }
        var slope: Float = 0
        if case let .number(s)? = j["leaky_slope"] { slope = Float(s) }
        // [gumbel] Absent in older checkpoints: those are Gaussian.
        var latentKind = LatentKind.gaussian
        if let k = j["latent_kind"] {
            guard case let .string(s) = k, let parsed = LatentKind(rawValue: s) else { throw CheckpointError.notDisttrain(path: path) }
            latentKind = parsed
        }
        return VAEArchitecture(inputDim: try int("input_dim"), classes: try int("classes"),
                               encoderHidden: try ints("encoder_hidden"), decoderHidden: try ints("decoder_hidden"),
                               latent: try int("latent"), activation: act == "leaky_relu" ? .leakyReLU(slope: slope) : .relu,
                               conditioning: conditioning, latentKind: latentKind)
    }
}

/// Checkpoint directories: `model.safetensors`, `optimizer.safetensors`, `trainer.json`.
/// Each file is written atomically and the directory is renamed into place last, so a crash
/// never leaves a checkpoint that looks complete but is not.
public enum Checkpoint {
    /// Writes the model tensors (PyTorch names, [out, in] weights) with the architecture in the metadata.
    public static func writeModel(_ model: VAE, params: UnsafePointer<Float>, to path: String, extra: [(String, String)] = []) throws {
        let entries = model.layout.exported.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, values: UnsafeBufferPointer(start: params + $0.offset, count: $0.count))
        }
        try SafeTensors.write(path: path, tensors: entries, metadata: [
            ("format", ModelMetadata.format),
            ("config", ModelMetadata.json(model.architecture).serialized),
        ] + extra)
    }

    /// Reads model tensors into `params` after checking the names and shapes match `model`.
    public static func readModel(_ model: VAE, into params: UnsafeMutablePointer<Float>, from path: String) throws {
        let file = try SafeTensors.read(path: path)
        for slot in model.layout.exported {
            guard let shape = file.shape(slot.name) else {
                throw CheckpointError.architectureMismatch(path: path, detail: "tensor \"\(slot.name)\" is missing")
            }
            guard shape == slot.shape else {
                throw CheckpointError.architectureMismatch(path: path, detail: "tensor \"\(slot.name)\" has shape \(shape), the model needs \(slot.shape)")
            }
            try file.copy(slot.name, into: UnsafeMutableBufferPointer(start: params + slot.offset, count: slot.count))
        }
        if let extra = file.names.first(where: { model.layout.slot(named: $0) == nil }) {
            throw CheckpointError.architectureMismatch(path: path, detail: "unexpected tensor \"\(extra)\"")
        }
    }

    /// Adam moments under `exp_avg.<name>` / `exp_avg_sq.<name>` (PyTorch's state names), step in the metadata.
    public static func writeOptimizer(_ model: VAE, adam: Adam, to path: String) throws {
        var entries: [SafeTensorsEntry] = []
        for (prefix, buffer) in [("exp_avg.", adam.m), ("exp_avg_sq.", adam.v)] {
            for s in model.layout.exported {
                entries.append(SafeTensorsEntry(name: prefix + s.name, shape: s.shape,
                                                values: UnsafeBufferPointer(start: buffer.base + s.offset, count: s.count)))
            }
        }
        try SafeTensors.write(path: path, tensors: entries, metadata: [
            ("format", "disttrain.adam.v1"), ("step", String(adam.step)),
            ("lr", "\(adam.lr)"), ("beta1", "\(adam.beta1)"), ("beta2", "\(adam.beta2)"), ("eps", "\(adam.eps)"),
        ])
    }

    public static func readOptimizer(_ model: VAE, adam: Adam, from path: String) throws {
        let file = try SafeTensors.read(path: path)
        guard file.metadata["format"] == "disttrain.adam.v1", let step = file.metadata["step"].flatMap(Int.init), step >= 0 else {
            throw CheckpointError.badState(path: path, reason: "not a disttrain optimizer state")
        }
        for (prefix, buffer) in [("exp_avg.", adam.m), ("exp_avg_sq.", adam.v)] {
            for s in model.layout.exported {
                guard file.shape(prefix + s.name) == s.shape else {
                    throw CheckpointError.architectureMismatch(path: path, detail: "optimizer tensor \"\(prefix + s.name)\" missing or of another shape")
                }
                try file.copy(prefix + s.name, into: UnsafeMutableBufferPointer(start: buffer.base + s.offset, count: s.count))
            }
        }
        adam.step = step
    }
}
