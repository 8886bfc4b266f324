import DistTrainIO
import Models

/// Layer stacks as JSON, the one format of the config's `model.encoder` / `model.decoder` and
/// of the architecture a checkpoint carries in its metadata:
///
///     {"type": "conv2d", "out": 32, "kernel": 3, "stride": 2, "padding": 1}
///     {"type": "conv_transpose2d", "out": 1, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}
///     {"type": "linear", "out": 256}   {"type": "batchnorm"}   {"type": "dropout", "p": 0.3}
///     {"type": "relu"}   {"type": "leaky_relu", "slope": 0.2}   {"type": "tanh"}   {"type": "sigmoid"}
///     {"type": "flatten"}   {"type": "reshape", "shape": [256, 2, 2]}
///     {"type": "residual", "block": [{"type": "conv2d", "out": 64, "kernel": 3, "padding": 1}]}   (y = x + block(x))
public enum LayerStackJSON {
    /// The layer types and their keys (besides "type"), for messages and the reference.
    static let keys: [String: [String]] = [
        "linear": ["out"], "conv2d": ["out", "kernel", "stride", "padding"],
        "conv_transpose2d": ["out", "kernel", "stride", "padding", "output_padding"],
        "batchnorm": [], "dropout": ["p"], "relu": [], "leaky_relu": ["slope"], "tanh": [], "sigmoid": [],
        "flatten": [], "reshape": ["shape"], "residual": ["block"],
    ]

    public static func json(_ stack: [LayerSpec]) -> JSON { .array(stack.map(json)) }

    public static func json(_ layer: LayerSpec) -> JSON {
        func n(_ x: Int) -> JSON { .number(Double(x)) }
        // A Float's shortest decimal form (0.3, not 0.30000001192092896), read back to the same Float.
        func f(_ x: Float) -> JSON { .number(Double("\(x)") ?? Double(x)) }
        switch layer {
        case let .linear(out): return .object([("type", "linear"), ("out", n(out))])
        case let .conv2d(out, k, s, p):
            return .object([("type", "conv2d"), ("out", n(out)), ("kernel", n(k)), ("stride", n(s)), ("padding", n(p))])
        case let .convTranspose2d(out, k, s, p, op):
            return .object([("type", "conv_transpose2d"), ("out", n(out)), ("kernel", n(k)), ("stride", n(s)),
                            ("padding", n(p)), ("output_padding", n(op))])
        case .batchNorm: return .object([("type", "batchnorm")])
        case let .dropout(p): return .object([("type", "dropout"), ("p", f(p))])
        case .relu: return .object([("type", "relu")])
        case let .leakyReLU(slope): return .object([("type", "leaky_relu"), ("slope", f(slope))])
        case .tanh: return .object([("type", "tanh")])
        case .sigmoid: return .object([("type", "sigmoid")])
        case .flatten: return .object([("type", "flatten")])
        case let .reshape(dims): return .object([("type", "reshape"), ("shape", .array(dims.map(n)))])
        case let .residual(block): return .object([("type", "residual"), ("block", json(block))])
        }
    }

    /// Parses a stack; errors name the element (`field[i].key`).
    public static func stack(_ value: JSON, field: String) throws -> [LayerSpec] {
        guard case let .array(items) = value else {
            throw ConfigError.wrongType(field: field, expected: "an array of layer objects", got: value.typeName)
        }
        guard !items.isEmpty else { throw ConfigError.invalidValue(field: field, reason: "must hold at least one layer") }
        guard items.count <= 10_000 else { throw ConfigError.invalidValue(field: field, reason: "has \(items.count) layers, at most 10000") }
        return try items.enumerated().map { try layer($0.element, field: "\(field)[\($0.offset)]") }
    }

    static func layer(_ value: JSON, field: String) throws -> LayerSpec {
        guard case let .object(pairs) = value else {
            throw ConfigError.wrongType(field: field, expected: "a layer object", got: value.typeName)
        }
        guard case let .string(type)? = value["type"] else {
            throw ConfigError.invalidValue(field: field + ".type", reason: "is missing: one of \(keys.keys.sorted().joined(separator: ", "))")
        }
        guard let allowed = keys[type] else {
            let guess = keys.keys.min { editDistance($0, type) < editDistance($1, type) }!
            throw ConfigError.invalidValue(field: field + ".type", reason: "\"\(type)\" is not a layer type (did you mean \"\(guess)\"?)")
        }
        for (k, _) in pairs where k != "type" && !allowed.contains(k) {
            throw ConfigError.unknownField(field: field + "." + k, suggestion: allowed.min { editDistance($0, k) < editDistance($1, k) })
        }
        func int(_ key: String, default d: Int? = nil, min: Int, max: Int = 1 << 20) throws -> Int {
            guard let v = value[key] else {
                if let d { return d }
                throw ConfigError.invalidValue(field: field + "." + key, reason: "is missing")
            }
            guard case let .number(x) = v, x == x.rounded(), x.magnitude < 1e15 else {
                throw ConfigError.wrongType(field: field + "." + key, expected: "an integer", got: v.typeName)
            }
            guard x >= Double(min) && x <= Double(max) else {
                throw ConfigError.invalidValue(field: field + "." + key, reason: "must be between \(min) and \(max), got \(JSON.format(x))")
            }
            return Int(x)
        }
        func number(_ key: String, default d: Double, min: Double, below: Double) throws -> Float {
            guard let v = value[key] else { return Float(d) }
            guard case let .number(x) = v else { throw ConfigError.wrongType(field: field + "." + key, expected: "a number", got: v.typeName) }
            guard x >= min && x < below else {
                throw ConfigError.invalidValue(field: field + "." + key, reason: "must be at least \(JSON.format(min)) and below \(JSON.format(below)), got \(JSON.format(x))")
            }
            return Float(x)
        }
        switch type {
        case "linear": return .linear(out: try int("out", min: 1))
        case "conv2d":
            return .conv2d(out: try int("out", min: 1), kernel: try int("kernel", min: 1, max: 64),
                           stride: try int("stride", default: 1, min: 1, max: 64), padding: try int("padding", default: 0, min: 0, max: 64))
        case "conv_transpose2d":
            return .convTranspose2d(out: try int("out", min: 1), kernel: try int("kernel", min: 1, max: 64),
                                    stride: try int("stride", default: 1, min: 1, max: 64),
                                    padding: try int("padding", default: 0, min: 0, max: 64),
                                    outputPadding: try int("output_padding", default: 0, min: 0, max: 63))
        case "batchnorm": return .batchNorm
        case "dropout": return .dropout(p: try number("p", default: 0.5, min: 0, below: 1))
        case "relu": return .relu
        case "leaky_relu": return .leakyReLU(slope: try number("slope", default: 0.01, min: 0, below: 1e6))
        case "tanh": return .tanh
        case "sigmoid": return .sigmoid
        case "flatten": return .flatten
        case "residual":
            guard let block = value["block"] else {
                throw ConfigError.invalidValue(field: field + ".block", reason: "is missing: the layers the residual block adds to its input")
            }
            return .residual(try stack(block, field: field + ".block"))
        default:  // reshape
            guard case let .array(dims)? = value["shape"], (1...3).contains(dims.count) else {
                throw ConfigError.invalidValue(field: field + ".shape", reason: "must be [n] or [C, H, W]")
            }
            return .reshape(try dims.enumerated().map { i, d in
                guard case let .number(x) = d, x == x.rounded(), x >= 1, x <= Double(1 << 24) else {
                    throw ConfigError.invalidValue(field: field + ".shape[\(i)]", reason: "must be a positive integer")
                }
                return Int(x)
            })
        }
    }
}
