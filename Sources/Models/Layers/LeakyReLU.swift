/// x for x > 0, slope * x otherwise (slope > 0). Backward reads the output, whose sign is the
/// input's.
public final class LeakyReLU: Layer {
    public let name: String
    public let inputShape: TensorShape
    public let slope: Float
    public var outputShape: TensorShape { inputShape }
    public var backwardReadsOutput: Bool { true }

    public init(shape: TensorShape, slope: Float, name: String) {
        precondition(slope >= 0, "\(name): leaky ReLU slope must be >= 0 (backward reads the sign off the output)")
        inputShape = shape; self.slope = slope; self.name = name
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let s = slope
        for i in 0..<(rows * inputShape.count) { y[i] = x[i] > 0 ? x[i] : x[i] * s }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        let s = slope
        for i in 0..<(rows * inputShape.count) { dx[i] = y[i] > 0 ? dy[i] : dy[i] * s }
    }
}
