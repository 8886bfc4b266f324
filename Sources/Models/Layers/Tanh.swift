/// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), through FastMath's vector exp
/// (libm's tanhf would stop the loop vectorizing). Backward: dy (1 - y^2), from the output.
public final class Tanh: Layer {
    public let name: String
    public let inputShape: TensorShape
    public var outputShape: TensorShape { inputShape }
    public var backwardReadsOutput: Bool { true }

    public init(shape: TensorShape, name: String) { inputShape = shape; self.name = name }

    @inline(__always)
    static func tanh(_ x: FastMath.V) -> FastMath.V {
        let a = x.replacing(with: -x, where: x .< 0)
        let e = FastMath.expNonPositive(-2 * a)
        let t = (1 - e) / (1 + e)
        return t.replacing(with: -t, where: x .< 0)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        Elementwise.map(x, y, count: rows * inputShape.count, Tanh.tanh)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        for i in 0..<(rows * inputShape.count) { dx[i] = dy[i] * (1 - y[i] * y[i]) }
    }
}
