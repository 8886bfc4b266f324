/// The posterior family of the latent code.
public enum LatentKind: String, CaseIterable, Sendable {
    /// Diagonal Gaussian q(z|x) with a N(0, I) prior; `latent` is the dimension of z.
    case gaussian
    /// Categorical q(c|x) relaxed with Gumbel-softmax, uniform prior; `latent` is the number
    /// of categories K (the decoder sees the relaxed one-hot sample y).
    case categorical
    /// Vector-quantized (VQ-VAE): the encoder's last output [D, H, W] is quantized per position
    /// to the nearest of `codebookSize` codes; `latent` is D. No noise, no KL: the latent term
    /// of the loss is the codebook + commitment loss (`VectorQuantizer`).
    case vectorQuantized = "vq"
}
