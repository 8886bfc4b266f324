/// One layer of an encoder or decoder stack, as config code writes it. Shapes are not given:
/// each layer's input shape is the previous layer's output, starting from the stack's input
/// (an image (C, H, W) or a vector), so a spec only names what PyTorch's constructor would
/// take besides the input size.
public enum LayerSpec: Equatable, Sendable {
    /// nn.Linear(in, out). A non-flat input is used flattened.
    case linear(out: Int)
    /// nn.Conv2d(in, out, kernel, stride, padding), square kernel.
    case conv2d(out: Int, kernel: Int, stride: Int = 1, padding: Int = 0)
    /// nn.ConvTranspose2d(in, out, kernel, stride, padding, output_padding).
    case convTranspose2d(out: Int, kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0)
    /// nn.BatchNorm1d on a flat input, nn.BatchNorm2d on an image.
    case batchNorm
    /// nn.Dropout(p): inverted scaling in training, identity in eval.
    case dropout(p: Float)
    case relu
    case leakyReLU(slope: Float)
    case tanh
    case sigmoid
    /// nn.Flatten: (C, H, W) -> [C * H * W], a view (no copy).
    case flatten
    /// A view to [n] or [C, H, W] (view(-1, C, H, W) in PyTorch); the count must match.
    case reshape([Int])
    /// y = x + block(x) around an inner stack that keeps the shape (`Residual`); PyTorch names
    /// the inner layers `NAME.block.{i}`.
    case residual([LayerSpec])

    /// Whether the layer holds trainable parameters (what PyTorch's `state_dict` indexes by).
    public var hasParameters: Bool {
        switch self {
        case .linear, .conv2d, .convTranspose2d, .batchNorm: return true
        case let .residual(block): return block.contains { $0.hasParameters }
        default: return false
        }
    }

    /// Builds the layer for `input`, reserving its parameters and state in `builder`.
    /// `fused` is an activation merged into a Linear (bias add and activation in one pass).
    public func make(input: TensorShape, name: String, builder: inout LayerBuilder, fused: Activation? = nil) -> any Layer {
        switch self {
        case let .linear(out):
            return Linear(inFeatures: input.count, outFeatures: out, name: name, activation: fused, layout: &builder.parameters)
        case let .conv2d(out, kernel, stride, padding):
            return Conv2d(input: input, outChannels: out, kernel: kernel, stride: stride, padding: padding,
                          name: name, builder: &builder)
        case let .convTranspose2d(out, kernel, stride, padding, outputPadding):
            return ConvTranspose2d(input: input, outChannels: out, kernel: kernel, stride: stride, padding: padding,
                                   outputPadding: outputPadding, name: name, builder: &builder)
        case .batchNorm:
            return BatchNorm(input: input, name: name, builder: &builder)
        case let .dropout(p):
            return Dropout(shape: input, p: p, name: name, builder: &builder)
        case .relu:
            return ReLU(shape: input, name: name)
        case let .leakyReLU(slope):
            return LeakyReLU(shape: input, slope: slope, name: name)
        case .tanh:
            return Tanh(shape: input, name: name)
        case .sigmoid:
            return Sigmoid(shape: input, name: name)
        case .flatten:
            return Reshape(input: input, output: .flat(input.count), name: name)
        case let .reshape(dims):
            precondition((1...3).contains(dims.count), "\(name): reshape takes [n] or [C, H, W], got \(dims)")
            let shape = dims.count == 1 ? TensorShape.flat(dims[0])
                : dims.count == 2 ? TensorShape(dims[0], dims[1], 1) : TensorShape(dims[0], dims[1], dims[2])
            return Reshape(input: input, output: shape, name: name)
        case let .residual(block):
            return Residual(input: input, block: block, name: name, builder: &builder)
        }
    }

    /// The output shape this layer gives `input` (PyTorch's shape rules), without building it.
    /// Meant for valid stacks (config checks refuse the others first); impossible sizes clamp to 1.
    public func outputShape(from input: TensorShape) -> TensorShape {
        switch self {
        case let .linear(out): return .flat(out)
        case let .conv2d(out, k, s, p):
            return TensorShape(out, max(1, (input.height + 2 * p - k) / s + 1), max(1, (input.width + 2 * p - k) / s + 1))
        case let .convTranspose2d(out, k, s, p, op):
            return TensorShape(out, max(1, (input.height - 1) * s - 2 * p + k + op), max(1, (input.width - 1) * s - 2 * p + k + op))
        case .flatten: return .flat(input.count)
        case let .reshape(dims):
            let d = dims.map { max($0, 1) }
            return d.count == 1 ? .flat(d[0]) : d.count == 2 ? TensorShape(d[0], d[1], 1) : TensorShape(d[0], d[1], d.count > 2 ? d[2] : 1)
        case .batchNorm, .dropout, .relu, .leakyReLU, .tanh, .sigmoid, .residual: return input
        }
    }

    /// The output shape of a whole stack from `input`.
    public static func outputShape(of stack: [LayerSpec], from input: TensorShape) -> TensorShape {
        var shape = input
        for l in stack { shape = l.outputShape(from: shape) }
        return shape
    }
}
