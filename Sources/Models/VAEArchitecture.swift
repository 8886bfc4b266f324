/// The shape of a VAE: everything needed to lay out and run its parameters.
///
/// Two ways to give the encoder and decoder: the MLP fields (`encoderHidden`, `decoderHidden`,
/// `activation`), which expand to Linear + activation stacks with the tensor names disttrain
/// always used (`encoder.layers.{i}` counting Linear layers, an output Linear `decoder.out`),
/// or explicit `encoderLayers` / `decoderLayers` stacks, named as PyTorch's nn.Sequential
/// would (`encoder.layers.{position in the stack}`), whose decoder must end at the input's size.
///
/// Conditioning: the decoder always sees [z | one-hot label]. The encoder sees the label
/// joined to its features at the first point where they are flat: at the input when the input
/// is a vector (the MLP CVAE: [x | y]), and right after the flatten for an image input (a
/// convolution has no good place for a one-hot, so conv encoders take it after their conv
/// trunk, before any Linear and the heads); an encoder that never flattens gets one at its end.
public struct VAEArchitecture: Equatable, Sendable {
    /// Shape of one input sample: (C, H, W) for images, (n, 1, 1) for vectors.
    public var inputShape: TensorShape
    public var classes: Int
    public var encoderHidden: [Int]
    public var decoderHidden: [Int]
    public var latent: Int
    public var activation: Activation
    public var conditioning: Conditioning
    public var latentKind: LatentKind
    /// Explicit encoder stack; nil: the MLP of `encoderHidden` and `activation`.
    public var encoderLayers: [LayerSpec]?
    /// Explicit decoder stack (must end at `inputDim` values, as logits); nil: the MLP of
    /// `decoderHidden` and `activation` followed by the output Linear `decoder.out`.
    public var decoderLayers: [LayerSpec]?
    public var reconstruction: Reconstruction
    /// K: codes in the codebook (vector-quantized latent only).
    public var codebookSize: Int = 512
    /// Weight of the commitment loss (vector-quantized latent only; 0.25 as in the paper).
    public var commitment: Float = 0.25
    /// EMA decay of the codebook (vector-quantized latent only); 0: trained by the gradient.
    public var codebookEMA: Float = 0
    /// Training forwards without an assignment after which a code is re-seeded from an
    /// encoder output (vector-quantized latent only); 0: never.
    public var codebookRestartSteps: Int = 0

    public init(inputDim: Int = 784, classes: Int = 10, encoderHidden: [Int] = [512, 512], decoderHidden: [Int] = [512, 512],
                latent: Int = 16, activation: Activation = .relu, conditioning: Conditioning = .both,
                latentKind: LatentKind = .gaussian) {
        self.inputShape = .flat(inputDim)
        self.classes = classes
        self.encoderHidden = encoderHidden
        self.decoderHidden = decoderHidden
        self.latent = latent
        self.activation = activation
        self.conditioning = conditioning
        self.latentKind = latentKind
        self.encoderLayers = nil
        self.decoderLayers = nil
        self.reconstruction = .bce
    }

    /// A VAE from explicit stacks (conv models, BatchNorm, dropout).
    public init(inputShape: TensorShape, classes: Int = 10, encoder: [LayerSpec], decoder: [LayerSpec], latent: Int,
                conditioning: Conditioning = .both, latentKind: LatentKind = .gaussian, reconstruction: Reconstruction = .bce) {
        self.init(inputDim: inputShape.count, classes: classes, encoderHidden: [], decoderHidden: [], latent: latent,
                  conditioning: conditioning, latentKind: latentKind)
        self.inputShape = inputShape
        self.encoderLayers = encoder
        self.decoderLayers = decoder
        self.reconstruction = reconstruction
    }

    /// Values per input sample (pixels).
    public var inputDim: Int {
        get { inputShape.count }
        set { inputShape = .flat(newValue) }
    }
    public var conditionsEncoder: Bool { conditioning == .both }
    public var conditionsDecoder: Bool { conditioning != .none }
    /// The encoder's label joins its input (a vector input) rather than its flattened features.
    public var labelJoinsInput: Bool { conditionsEncoder && inputShape.isFlat }
    /// Encoder input width: pixels, then the one-hot label if it joins at the input.
    public var encoderInputWidth: Int { inputDim + (labelJoinsInput ? classes : 0) }
    /// Decoder input width: z, then the one-hot label if the decoder is conditioned.
    public var decoderInputWidth: Int { latentWidth + (conditionsDecoder ? classes : 0) }
    /// Encoder head outputs per row: [mean | logvar] (2 * latent), the K category logits, or
    /// the quantizer's input z_e (D x positions).
    public var headsWidth: Int {
        switch latentKind {
        case .gaussian: return 2 * latent
        case .categorical: return latent
        case .vectorQuantized: return latentWidth
        }
    }
    /// Values of z per row: `latent`, or D x positions for a vector-quantized latent.
    public var latentWidth: Int { latentKind == .vectorQuantized ? latent * latentPositions : latent }
    /// Spatial positions (H x W) of the encoder's output: the vectors a VQ latent quantizes
    /// (1 for the other kinds, whose encoder ends in the heads).
    public var latentPositions: Int {
        latentKind == .vectorQuantized ? LayerSpec.outputShape(of: encoderStack, from: inputShape).spatial : 1
    }

    public static func mlp(_ hidden: [Int], _ activation: Activation) -> [LayerSpec] {
        hidden.flatMap { h -> [LayerSpec] in
            switch activation {
            case .relu: return [.linear(out: h), .relu]
            case let .leakyReLU(slope): return [.linear(out: h), .leakyReLU(slope: slope)]
            }
        }
    }

    /// The encoder stack (before the heads), explicit or expanded from the MLP fields.
    public var encoderStack: [LayerSpec] { encoderLayers ?? Self.mlp(encoderHidden, activation) }
    /// The decoder stack; for the MLP form it ends with the output Linear (`decoder.out`).
    public var decoderStack: [LayerSpec] { decoderLayers ?? (Self.mlp(decoderHidden, activation) + [.linear(out: inputDim)]) }
}
