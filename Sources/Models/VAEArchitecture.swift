/// Which parts of a VAE see the one-hot label.
public enum Conditioning: String, CaseIterable, Sendable {
    /// Encoder input [x | y] and decoder input [z | y]: the conditional VAE of seed 000.
    case both
    /// Only the decoder sees the label (seed 002's VAE_Cond).
    case decoder
    /// A plain, unconditional VAE.
    case none
}

/// The posterior family of the latent code.
public enum LatentKind: String, CaseIterable, Sendable {
    /// Diagonal Gaussian q(z|x) with a N(0, I) prior; `latent` is the dimension of z.
    case gaussian
    /// Categorical q(c|x) relaxed with Gumbel-softmax, uniform prior; `latent` is the number
    /// of categories K (the decoder sees the relaxed one-hot sample y).
    case categorical
}

/// The shape of an MLP VAE: everything needed to lay out and run its parameters.
public struct VAEArchitecture: Equatable, Sendable {
    public var inputDim: Int
    public var classes: Int
    public var encoderHidden: [Int]
    public var decoderHidden: [Int]
    public var latent: Int
    public var activation: Activation
    public var conditioning: Conditioning
    public var latentKind: LatentKind

    public init(inputDim: Int = 784, classes: Int = 10, encoderHidden: [Int] = [512, 512], decoderHidden: [Int] = [512, 512],
                latent: Int = 16, activation: Activation = .relu, conditioning: Conditioning = .both,
                latentKind: LatentKind = .gaussian) {
        self.inputDim = inputDim
        self.classes = classes
        self.encoderHidden = encoderHidden
        self.decoderHidden = decoderHidden
        self.latent = latent
        self.activation = activation
        self.conditioning = conditioning
        self.latentKind = latentKind
    }

    public var conditionsEncoder: Bool { conditioning == .both }
    public var conditionsDecoder: Bool { conditioning != .none }
    /// Encoder input width: pixels, then the one-hot label if the encoder is conditioned.
    public var encoderInputWidth: Int { inputDim + (conditionsEncoder ? classes : 0) }
    /// Decoder input width: z, then the one-hot label if the decoder is conditioned.
    public var decoderInputWidth: Int { latent + (conditionsDecoder ? classes : 0) }
    /// Encoder head outputs per row: [mean | logvar] (2 * latent) or the K category logits.
    public var headsWidth: Int { latentKind == .gaussian ? 2 * latent : latent }
}
