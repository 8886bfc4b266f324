/// Flatten and Reshape: the same floats read with another shape. Rows are contiguous NCHW, so
/// this is a view: the model passes the input buffer on as the output and the gradient back
/// unchanged, with no copy and no work.
public final class Reshape: Layer {
    public let name: String
    public let inputShape: TensorShape
    public let outputShape: TensorShape
    public var isView: Bool { true }

    public init(input: TensorShape, output: TensorShape, name: String) {
        precondition(input.count == output.count, "\(name): cannot reshape \(input) (\(input.count) values) to \(output)")
        inputShape = input; outputShape = output; self.name = name
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        if UnsafePointer(y) != x { y.update(from: x, count: rows * inputShape.count) }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        if let dx, dx != dy { dx.update(from: dy, count: rows * inputShape.count) }
    }
}
