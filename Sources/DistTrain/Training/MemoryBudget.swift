import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// The memory a model needs, estimated from its architecture before anything is allocated,
/// against what this rank can have: a config or checkpoint asking for more stops with one line
/// instead of "failed to allocate" (SIGABRT) or the machine swapping to a halt.
///
/// Estimate (bytes, in floating point so no width overflows), walking the layer stacks with
/// the shape rules of `ArchitectureCheck` (MLP fields expand to the same stacks):
/// - P parameters: Linear in x out + out, convolutions out x in x k x k + out, BatchNorm 2C
///   (float32; BatchNorm's running statistics, 2C more, are counted with the workspace);
/// - training: 4P each for parameters, gradients and Adam's two moments, plus 8P while a
///   checkpoint's optimizer file is read on resume (24P), and the workspace: 3 floats per
///   row per weighted layer's input and output (activations, pre-activations, gradients),
///   plus a convolution's unfolded columns (in x k x k per output position, or out x k x k per
///   input position for a transposed one), a dropout mask, BatchNorm's normalized values;
/// - inference (checkpoint commands): 4P parameters plus 4P for the checkpoint file read
///   whole, and the workspace;
/// - 4 KiB per layer for the layer objects, names and per-layer buffers.
public enum MemoryBudget {
    /// A model that needs more than this rank can have.
    public struct TooLarge: Error, CustomStringConvertible {
        public let what: String
        public let parameters: Double
        public let neededBytes: Double
        public let availableBytes: Double
        public init(what: String, parameters: Double, neededBytes: Double, availableBytes: Double) {
            self.what = what
            self.parameters = parameters
            self.neededBytes = neededBytes
            self.availableBytes = availableBytes
        }
        public var description: String {
            "\(what): about \(MemoryBudget.gb(neededBytes)) needed (\(MemoryBudget.count(parameters)) parameters, optimizer state and workspaces), more than the \(MemoryBudget.gb(availableBytes)) this rank can use; make the layers smaller or fewer"
        }
    }

    /// True for the MLP form (no explicit encoder or decoder layer stack).
    public static func isMLP(_ a: VAEArchitecture) -> Bool { a.encoderLayers == nil && a.decoderLayers == nil }

    /// One layer's share of the estimate: its parameters and its workspace floats per row.
    struct LayerCost {
        var parameters: Double
        var rowFloats: Double
    }

    /// Every layer's cost, encoder stack, heads, then decoder stack; nil when the stacks do not
    /// fit together (`ArchitectureCheck` names the layer; nothing is estimated for it).
    static func costs(_ a: VAEArchitecture) -> [LayerCost]? {
        guard ArchitectureCheck.problem(a) == nil else { return nil }
        var out: [LayerCost] = []
        var shape = a.labelJoinsInput ? TensorShape.flat(a.encoderInputWidth) : a.inputShape
        walk(a.encoderStack, from: &shape, into: &out)
        if a.latentKind == .vectorQuantized {
            // [vq] The codebook (trainable unless EMA, then state) instead of heads; z_e, z_q and their gradients.
            let book = Double(a.codebookSize * a.latent)
            out.append(LayerCost(parameters: a.codebookEMA > 0 ? 0 : book, rowFloats: 4 * Double(a.latentWidth)))
        } else {
            let features = Double(shape.count + (a.conditionsEncoder && !a.labelJoinsInput ? a.classes : 0))
            let heads = Double(a.headsWidth)
            out.append(LayerCost(parameters: features * heads + heads, rowFloats: 3 * (features + heads)))
        }
        shape = .flat(a.decoderInputWidth)
        walk(a.decoderStack, from: &shape, into: &out)
        return out
    }

    /// The costs of `stack` from input `shape` (moved to the stack's output).
    static func walk(_ stack: [LayerSpec], from shape: inout TensorShape, into out: inout [LayerCost]) {
        for layer in stack {
            let input = shape
            _ = ArchitectureCheck.walk([layer], from: &shape, field: "")
            let i = Double(input.count), o = Double(shape.count)
            switch layer {
            case .linear:
                out.append(LayerCost(parameters: i * o + o, rowFloats: 3 * (i + o)))
            case let .conv2d(channels, k, _, _):
                let c = Double(channels), window = Double(input.channels * k * k)
                out.append(LayerCost(parameters: c * window + c, rowFloats: 3 * (i + o) + window * Double(shape.spatial)))
            case let .convTranspose2d(channels, k, _, _, _):
                let c = Double(channels), window = Double(channels * k * k)
                out.append(LayerCost(parameters: Double(input.channels) * window + c, rowFloats: 3 * (i + o) + window * Double(input.spatial)))
            case .batchNorm:
                let c = Double(input.channels)
                out.append(LayerCost(parameters: 2 * c, rowFloats: 2 * o))
            case .dropout:
                out.append(LayerCost(parameters: 0, rowFloats: o))
            case let .residual(block):
                // The block's own layers, then its kept output and two gradient buffers.
                var inner = input
                walk(block, from: &inner, into: &out)
                out.append(LayerCost(parameters: 0, rowFloats: 3 * o))
            case .relu, .leakyReLU, .tanh, .sigmoid, .flatten, .reshape:
                break  // in place, fused, or a view of the buffer before
            }
        }
    }

    /// Number of trainable parameters (the tensors a checkpoint holds; the flat buffer adds a
    /// little alignment padding), exactly for any model that fits in memory.
    public static func parameterCount(_ a: VAEArchitecture) -> Double {
        (costs(a) ?? []).reduce(0) { $0 + $1.parameters }
    }

    /// Estimated bytes for `rows` rows of workspace, training or not.
    public static func neededBytes(_ a: VAEArchitecture, rows: Int, training: Bool) -> Double {
        let l = costs(a) ?? []
        let p = parameterCount(a)
        let perRow = l.reduce(0) { $0 + $1.rowFloats } + Double(a.inputDim + 4 * a.latent)
        return (training ? 24 : 8) * p + 4 * Double(max(rows, 1)) * perRow + 4096 * Double(l.count)
    }

    /// Bytes this process may allocate: the smaller of the kernel's MemAvailable and the
    /// cgroup's remaining limit, shared by the ranks on this host.
    public static func availableBytes(ranksOnHost: Int) -> Double {
        var available = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        if let text = try? FileBytes.readString("/proc/meminfo", limit: 1 << 20),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            available = min(available, kb * 1024)
        }
        if let max = try? FileBytes.readString("/sys/fs/cgroup/memory.max", limit: 4096),
           let limit = Double(max.trimmingCharacters(in: " \n")),
           let current = (try? FileBytes.readString("/sys/fs/cgroup/memory.current", limit: 4096)).flatMap({ Double($0.trimmingCharacters(in: " \n")) }) {
            available = min(available, Swift.max(0, limit - current))
        }
        return available / Double(Swift.max(ranksOnHost, 1))
    }

    /// Hidden layers per MLP at most: setting up 60,000 layers of width 8 took over a minute
    /// (per-layer bookkeeping), far past any model this trainer is for.
    public static let maxHiddenLayers = 1024

    /// Throws `TooLarge` when the estimate exceeds what this rank can have, or when an MLP
    /// has more than `maxHiddenLayers` hidden layers.
    public static func check(_ a: VAEArchitecture, rows: Int, training: Bool, ranksOnHost: Int, what: String) throws {
        let deepest = max(a.encoderHidden.count, a.decoderHidden.count)
        if deepest > maxHiddenLayers {
            throw TooManyLayers(what: what, layers: deepest, limit: maxHiddenLayers)
        }
        let needed = neededBytes(a, rows: rows, training: training)
        let available = availableBytes(ranksOnHost: ranksOnHost)
        if needed > available {
            throw TooLarge(what: what, parameters: parameterCount(a), neededBytes: needed, availableBytes: available)
        }
    }

    /// A model with more hidden layers than `maxHiddenLayers`.
    public struct TooManyLayers: Error, CustomStringConvertible {
        public let what: String
        public let layers: Int
        public let limit: Int
        public var description: String { "\(what): \(layers) hidden layers in one MLP, at most \(limit) are supported" }
    }

    static func gb(_ bytes: Double) -> String {
        bytes >= 1e9 ? PlotText.number(bytes / 1e9, decimals: 1) + " GB" : PlotText.number(bytes / 1e6, decimals: 1) + " MB"
    }

    static func count(_ n: Double) -> String {
        n >= 1e9 ? PlotText.number(n / 1e9, decimals: 1) + " billion" : n >= 1e6 ? PlotText.number(n / 1e6, decimals: 1) + " million" : PlotText.number(n, decimals: 0)
    }
}
