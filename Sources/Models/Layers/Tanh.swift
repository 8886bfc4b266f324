/// The tanh layer (see TanhFunction).
public typealias Tanh = OutputDerivativeActivation<TanhFunction>

/// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), through FastMath's vector exp
/// (libm's tanhf would stop the loop vectorizing). Backward: dy (1 - y^2), from the output.
public enum TanhFunction: OutputDerivativeFunction {
    @inline(__always)
    public static func value(_ x: FastMath.V) -> FastMath.V {
        let a = x.replacing(with: -x, where: x .< 0)
        let e = FastMath.expNonPositive(-2 * a)
        let t = (1 - e) / (1 + e)
        return t.replacing(with: -t, where: x .< 0)
    }

    @inline(__always)
    public static func inputGradient(dy: Float, y: Float) -> Float { dy * (1 - y * y) }
}
