/// max(x, 0), elementwise. Backward reads the output: y > 0 exactly where x > 0.
/// (After a Linear the stack fuses it into the Linear instead; this type serves the others.)
public final class ReLU: Layer {
    public let name: String
    public let inputShape: TensorShape
    public var outputShape: TensorShape { inputShape }
    public var backwardReadsOutput: Bool { true }

    public init(shape: TensorShape, name: String) { inputShape = shape; self.name = name }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        for i in 0..<(rows * inputShape.count) { y[i] = x[i] > 0 ? x[i] : 0 }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        for i in 0..<(rows * inputShape.count) { dx[i] = y[i] > 0 ? dy[i] : 0 }
    }
}
