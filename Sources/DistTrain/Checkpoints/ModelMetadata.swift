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
