/// One layer of a stack: its shapes, where its parameters live, what scratch it needs, and
/// an explicit forward and backward over a batch of rows.
///
/// Buffers are row-major [B, count]; for images count = C * H * W in NCHW order. A layer owns
/// no memory: the model reserves its parameters and state at build time (names and offsets in
/// the layouts) and the workspace allocates its output and `scratchBytes` once for `capacity`
/// rows, so a training step allocates nothing. Adding a layer kind means writing one type
/// conforming to this protocol plus one `LayerSpec` case.
public protocol Layer: AnyObject, Sendable {
    /// Public name prefix of its tensors (e.g. "encoder.layers.3").
    var name: String { get }
    var inputShape: TensorShape { get }
    var outputShape: TensorShape { get }
    /// Offset of the layer's first parameter in the flat buffer; nil without parameters. The
    /// backward pass reports it when the layer's gradients are final.
    var parameterOffset: Int? { get }
    /// Multiply-add FLOPs (2 per multiply-add) of the products in one forward row.
    var flopsPerRow: Int { get }
    /// FLOPs per row of the input-gradient product in backward (skipped for the first layer).
    var inputGradientFlopsPerRow: Int { get }
    /// Backward reads the output y (activations), so y must still hold the output then.
    var backwardReadsOutput: Bool { get }
    /// The output is the input reinterpreted (Flatten, Reshape): no buffer, no work.
    var isView: Bool { get }
    /// Scratch bytes needed for batches of up to `capacity` rows.
    func scratchBytes(capacity: Int) -> Int
    /// PyTorch's default initialization of the parameters, drawn in order from `rng`.
    func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64)
    /// Initial non-trainable state (running mean 0, running variance 1, ...).
    func initializeState(_ state: UnsafeMutablePointer<Float>)
    /// y[rows, out] from x[rows, in].
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext)
    /// Parameter gradients into c.grads and, when `dx` is given, dx[rows, in]. `dy` may be
    /// overwritten (activations scale it in place). Always after a training-mode forward of the
    /// same rows with the same context.
    func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                  _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext)
}

public extension Layer {
    var parameterOffset: Int? { nil }
    var flopsPerRow: Int { 0 }
    var inputGradientFlopsPerRow: Int { 0 }
    var backwardReadsOutput: Bool { false }
    var isView: Bool { false }
    func scratchBytes(capacity: Int) -> Int { 0 }
    func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {}
    func initializeState(_ state: UnsafeMutablePointer<Float>) {}
}
