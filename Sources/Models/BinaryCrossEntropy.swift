/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1], from the logits:
/// bce = max(l, 0) - l x + log(1 + e^-|l|), the same value as -x log p - (1-x) log(1-p) with no
/// log(0) for saturated pixels. Its gradient with respect to l is sigmoid(l) - x.
/// Evaluated by ElementwiseLoss.evaluate(.bce, ...), whose row loop both losses share.
public enum BinaryCrossEntropy {
    @inline(__always)
    static func element(_ l: FastMath.V, _ x: FastMath.V) -> (loss: FastMath.V, grad: FastMath.V) {
        let zero = FastMath.V(repeating: 0)
        let negAbs = l.replacing(with: -l, where: l .> zero)
        let e = FastMath.expNonPositive(negAbs)                  // e^-|l| in (0, 1]
        let loss = l.replacing(with: zero, where: l .< zero) - l * x + FastMath.log1pUnit(e)
        let r = 1 / (1 + e)
        let sigmoid = (e * r).replacing(with: r, where: l .>= zero)
        return (loss, sigmoid - x)
    }

    /// sigmoid(logits) into `out` (for images).
    public static func sigmoid(_ logits: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { out[i] = 1 / (1 + expf(-logits[i])) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
