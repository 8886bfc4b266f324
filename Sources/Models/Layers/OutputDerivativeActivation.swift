/// A smooth elementwise function whose derivative is a function of its output, the lane
/// function and backward product of an `OutputDerivativeActivation` (Sigmoid, Tanh).
public protocol OutputDerivativeFunction {
    /// f(x) on 8 lanes, with no libm call so that the forward loop vectorizes.
    static func value(_ x: FastMath.V) -> FastMath.V
    /// dx = dy f'(x), written from the output y = f(x).
    static func inputGradient(dy: Float, y: Float) -> Float
}

/// The layer around an `OutputDerivativeFunction`: shape-preserving, forward through
/// Elementwise.map, backward from the output (so the stack keeps y, not x). Written once so
/// that Sigmoid and Tanh differ only in their two functions.
/// Buffers: x, y, dy, dx [rows, inputShape.count].
public final class OutputDerivativeActivation<Function: OutputDerivativeFunction>: Layer {
    public let name: String
    public let inputShape: TensorShape
    public var outputShape: TensorShape { inputShape }
    public var backwardReadsOutput: Bool { true }

    public init(shape: TensorShape, name: String) { inputShape = shape; self.name = name }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        Elementwise.map(x, y, count: rows * inputShape.count, Function.value)
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        for i in 0..<(rows * inputShape.count) { dx[i] = Function.inputGradient(dy: dy[i], y: y[i]) }
    }
}
