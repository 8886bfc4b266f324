/// [features | one-hot label]: the label join of a conditioned encoder whose input is an
/// image. The label cannot enter a convolution as extra pixels, so it is joined after the
/// features are flattened (see VAEArchitecture); the one-hot comes from the rows' labels.
public final class LabelConcat: Layer {
    public let name: String
    public let inputShape: TensorShape
    public let classes: Int
    public var outputShape: TensorShape { .flat(inputShape.count + classes) }

    public init(input: TensorShape, classes: Int, name: String) {
        inputShape = input; self.classes = classes; self.name = name
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let n = inputShape.count, w = n + classes
        for r in 0..<rows {
            let out = y + r * w
            out.update(from: x + r * n, count: n)
            (out + n).update(repeating: 0, count: classes)
            out[n + Int(c.labels[r])] = 1
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        let n = inputShape.count, w = n + classes
        for r in 0..<rows { (dx + r * n).update(from: dy + r * w, count: n) }
    }
}
