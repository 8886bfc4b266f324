/// Squared error of sigmoid(logits) against targets in [0, 1], summed per row: seed 003's
/// ConvVAE objective (nn.Sigmoid at the decoder's end, MSE summed over pixels). The sigmoid is
/// applied here so the decoder outputs logits like every other model. Gradient with respect to
/// the logit l: 2 (s - x) s (1 - s), s = sigmoid(l).
public enum SquaredError {
    /// Per-row sums into `rowLoss`; with `gradientScale`, logits are overwritten in place by
    /// gradientScale * dloss/dlogit. `targets` rows are `targetStride` floats apart.
    /// The loop is ElementwiseLoss's, shared with BinaryCrossEntropy.
    public static func evaluate(logits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Float>, targetStride: Int,
                                rows: Int, width: Int, gradientScale: Float?, rowLoss: UnsafeMutablePointer<Float>?) -> Double {
        ElementwiseLoss.evaluate(.mse, logits: logits, targets: targets, targetStride: targetStride, rows: rows, width: width,
                                 gradientScale: gradientScale, rowLoss: rowLoss)
    }

    @inline(__always)
    static func element(_ l: FastMath.V, _ x: FastMath.V) -> (loss: FastMath.V, grad: FastMath.V) {
        let s = SigmoidFunction.value(l)
        let d = s - x
        return (d * d, 2 * d * s * (1 - s))
    }
}
