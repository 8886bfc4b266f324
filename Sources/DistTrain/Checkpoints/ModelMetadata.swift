import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// The model architecture as checkpoint metadata: a JSON string under "config", so a
/// checkpoint alone says how to rebuild its model.
public enum ModelMetadata {
    public static let format = "disttrain.vae.v1"

    public static func json(_ a: VAEArchitecture) -> JSON {
        if a.encoderLayers != nil || a.decoderLayers != nil {
            // A layer-stack model: the stacks themselves, in the config's layer format.
            let shape = a.inputShape
            let vq: [(String, JSON)] = a.latentKind == .vectorQuantized
                ? [("codebook_size", .number(Double(a.codebookSize))), ("commitment", .number(Double("\(a.commitment)") ?? Double(a.commitment))),
                   ("codebook_ema", .number(Double("\(a.codebookEMA)") ?? Double(a.codebookEMA)))]
                  + (a.codebookRestartSteps > 0 ? [("codebook_restart_steps", .number(Double(a.codebookRestartSteps)))] : []) : []
            return .object(vq + [
                ("input_shape", .array([shape.channels, shape.height, shape.width].map { .number(Double($0)) })),
                ("classes", .number(Double(a.classes))),
                ("conditioning", .string(a.conditioning.rawValue)),
                ("latent", .number(Double(a.latent))),
                ("latent_kind", .string(a.latentKind.rawValue)),
                ("reconstruction", .string(a.reconstruction.rawValue)),
                ("encoder", LayerStackJSON.json(a.encoderStack)),
                ("decoder", LayerStackJSON.json(a.decoderStack)),
                ("label_joins", .string(a.labelJoinsInput ? "the input vector: [pixels/255 | one-hot]"
                                                          : "the flattened encoder output, before the heads")),
            ])
        }
        var activation = "relu", slope = 0.0
        if case let .leakyReLU(s) = a.activation { activation = "leaky_relu"; slope = Double(s) }
        // "reconstruction" only when it is "mse": older checkpoints lack it and are BCE, and a
        // BCE model's file stays byte for byte what it was before the field was written.
        let reconstruction: [(String, JSON)] = a.reconstruction == .bce ? [] : [("reconstruction", .string(a.reconstruction.rawValue))]
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
        ] + reconstruction)
    }

    /// Rebuilds the architecture from a checkpoint's metadata.
    public static func architecture(from metadata: [String: String], path: String) throws -> VAEArchitecture {
        guard metadata["format"] == format, let text = metadata["config"], let j = try? JSON.parse(text) else {
            throw CheckpointError.notDisttrain(path: path)
        }
        if j["encoder"] != nil { return try stackArchitecture(j, path: path) }
        func ints(_ key: String) throws -> [Int] {
            guard case let .array(items)? = j[key] else { throw CheckpointError.notDisttrain(path: path) }
            return try items.map {
                guard case let .number(d) = $0, d >= 1, let i = Int(exactly: d), i <= 1 << 30 else { throw CheckpointError.notDisttrain(path: path) }
                return i
            }
        }
        func int(_ key: String) throws -> Int {
            guard case let .number(d)? = j[key], d >= 1, let i = Int(exactly: d), i <= 1 << 30 else { throw CheckpointError.notDisttrain(path: path) }
            return i
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
        // Absent in BCE checkpoints (and in every MLP checkpoint written before it was recorded).
        var reconstruction = Reconstruction.bce
        if let r = j["reconstruction"] {
            guard case let .string(s) = r, let parsed = Reconstruction(rawValue: s) else { throw CheckpointError.notDisttrain(path: path) }
            reconstruction = parsed
        }
        var a = VAEArchitecture(inputDim: try int("input_dim"), classes: try int("classes"),
                                encoderHidden: try ints("encoder_hidden"), decoderHidden: try ints("decoder_hidden"),
                                latent: try int("latent"), activation: act == "leaky_relu" ? .leakyReLU(slope: slope) : .relu,
                                conditioning: conditioning, latentKind: latentKind)
        a.reconstruction = reconstruction
        return a
    }

    /// A layer-stack model's architecture; every problem is the checkpoint's, named.
    static func stackArchitecture(_ j: JSON, path: String) throws -> VAEArchitecture {
        func bad(_ why: String) -> CheckpointError { .architectureMismatch(path: path, detail: "its metadata's architecture: \(why)") }
        func int(_ key: String) throws -> Int {
            guard case let .number(d)? = j[key], d >= 1, d <= Double(1 << 24), d == d.rounded() else { throw bad("\(key) is not a positive integer") }
            return Int(d)
        }
        guard case let .array(dims)? = j["input_shape"], dims.count == 3 else { throw bad("input_shape is not [C, H, W]") }
        let shape = try dims.map { v -> Int in
            guard case let .number(d) = v, d >= 1, d <= Double(1 << 16), d == d.rounded() else { throw bad("input_shape is not [C, H, W]") }
            return Int(d)
        }
        guard case let .string(c)? = j["conditioning"], let conditioning = Conditioning(rawValue: c),
              case let .string(k)? = j["latent_kind"], let latentKind = LatentKind(rawValue: k),
              case let .string(r)? = j["reconstruction"], let reconstruction = Reconstruction(rawValue: r) else {
            throw bad("conditioning, latent_kind or reconstruction missing or unknown")
        }
        let encoder: [LayerSpec], decoder: [LayerSpec]
        do {
            encoder = try LayerStackJSON.stack(j["encoder"] ?? .null, field: "encoder")
            decoder = try LayerStackJSON.stack(j["decoder"] ?? .null, field: "decoder")
        } catch { throw bad("\(error)") }
        var a = VAEArchitecture(inputShape: TensorShape(shape[0], shape[1], shape[2]), classes: try int("classes"),
                                encoder: encoder, decoder: decoder, latent: try int("latent"),
                                conditioning: conditioning, latentKind: latentKind, reconstruction: reconstruction)
        if latentKind == .vectorQuantized {
            a.codebookSize = try int("codebook_size")
            guard case let .number(beta)? = j["commitment"], beta >= 0, beta.isFinite else { throw bad("commitment is not a number") }
            a.commitment = Float(beta)
            if let value = j["codebook_ema"] {  // absent: a gradient codebook
                guard case let .number(ema) = value, ema >= 0, ema < 1 else { throw bad("codebook_ema is not a number in [0, 1)") }
                a.codebookEMA = Float(ema)
            }
            if j["codebook_restart_steps"] != nil {  // absent: no restart (no idle counts in the state)
                a.codebookRestartSteps = try int("codebook_restart_steps")
            }
        }
        if let p = ArchitectureCheck.problem(a) { throw bad("\(p.field) \(p.reason)") }
        return a
    }
}
