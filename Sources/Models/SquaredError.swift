/// Squared error of sigmoid(logits) against targets in [0, 1], summed per row: seed 003's
/// ConvVAE objective (nn.Sigmoid at the decoder's end, MSE summed over pixels). The sigmoid is
/// applied here so the decoder outputs logits like every other model. Gradient with respect to
/// the logit l: 2 (s - x) s (1 - s), s = sigmoid(l).
/// Evaluated by ElementwiseLoss.evaluate(.mse, ...), whose row loop both losses share.
public enum SquaredError {
    @inline(__always)
    static func element(_ l: FastMath.V, _ x: FastMath.V) -> (loss: FastMath.V, grad: FastMath.V) {
        let s = SigmoidFunction.value(l)
        let d = s - x
        return (d * d, 2 * d * s * (1 - s))
    }
}
