/// The sigmoid layer (see SigmoidFunction).
public typealias Sigmoid = OutputDerivativeActivation<SigmoidFunction>

/// 1 / (1 + exp(-x)) through FastMath's vector exp of -|x| (no overflow, no libm call).
/// Backward: dy y (1 - y), from the output.
public enum SigmoidFunction: OutputDerivativeFunction {
    @inline(__always)
    public static func value(_ x: FastMath.V) -> FastMath.V {
        let e = FastMath.expNonPositive(x.replacing(with: -x, where: x .> 0))   // e^-|x|
        let r = 1 / (1 + e)
        return (e * r).replacing(with: r, where: x .>= 0)
    }

    @inline(__always)
    public static func inputGradient(dy: Float, y: Float) -> Float { dy * y * (1 - y) }
}
