/// The reconstruction term of the loss. The decoder always outputs logits (pre-sigmoid
/// values) into the workspace's `logits`; both losses read pixels as sigmoid(logits), so image
/// code is the same for both.
public enum Reconstruction: String, CaseIterable, Sendable {
    /// Binary cross-entropy of sigmoid(logits) against the pixels, summed per sample (the MLP
    /// VAEs and seed 004's CVAE).
    case bce
    /// Squared error of sigmoid(logits) against the pixels, summed per sample: seed 003's
    /// ConvVAE, whose decoder ends in nn.Sigmoid and is trained with MSE. The sigmoid is part
    /// of the loss, so such a decoder stack must not end in `.sigmoid` itself.
    case mse
}
