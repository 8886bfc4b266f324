/// Which parts of a VAE see the one-hot label.
public enum Conditioning: String, CaseIterable, Sendable {
    /// Encoder input [x | y] and decoder input [z | y]: the conditional VAE of seed 000.
    case both
    /// Only the decoder sees the label (seed 002's VAE_Cond).
    case decoder
    /// A plain, unconditional VAE.
    case none
}
