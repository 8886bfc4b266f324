/// The posterior family of the latent code.
public enum LatentKind: String, CaseIterable, Sendable {
    /// Diagonal Gaussian q(z|x) with a N(0, I) prior; `latent` is the dimension of z.
    case gaussian
    /// Categorical q(c|x) relaxed with Gumbel-softmax, uniform prior; `latent` is the number
    /// of categories K (the decoder sees the relaxed one-hot sample y).
    case categorical
}
