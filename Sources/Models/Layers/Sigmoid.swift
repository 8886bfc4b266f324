/// 1 / (1 + exp(-x)) through FastMath's vector exp of -|x| (no overflow, no libm call).
/// Backward: dy y (1 - y), from the output.
public final class Sigmoid: Layer {
    public let name: String
    public let inputShape: TensorShape
    public var outputShape: TensorShape { inputShape }
    public var backwardReadsOutput: Bool { true }

    public init(shape: TensorShape, name: String) { inputShape = shape; self.name = name }

    @inline(__always)
    static func sigmoid(_ x: FastMath.V) -> FastMath.V {
        let e = FastMath.expNonPositive(x.replacing(with: -x, where: x .> 0))   // e^-|x|
        let r = 1 / (1 + e)
        return (e * r).replacing(with: r, where: x .>= 0)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        Elementwise.map(x, y, count: rows * inputShape.count, Sigmoid.sigmoid)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        for i in 0..<(rows * inputShape.count) { dx[i] = dy[i] * y[i] * (1 - y[i]) }
    }
}
