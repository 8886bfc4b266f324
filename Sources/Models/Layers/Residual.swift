/// y = x + block(x): a skip connection around an inner stack of layers (the residual blocks of
/// seed 001's VQ-VAE encoder: a 3x3 and a 1x1 convolution, each added to its input). PyTorch
/// names the inner layers `NAME.block.{i}` (an nn.Sequential attribute `block`).
///
/// The block's layers own no memory either: their outputs, their scratch and two gradient
/// buffers all live in this layer's scratch, laid out from `capacity` at every call (plain
/// arithmetic, so a step still allocates nothing). The block's last output is kept apart from
/// y so that a final activation can read its own output in backward.
public final class Residual: Layer {
    public let name: String
    public let inputShape: TensorShape
    public var outputShape: TensorShape { inputShape }
    /// The inner layers in order; each takes the previous one's output (no views).
    public let block: [any Layer]

    public init(input: TensorShape, block specs: [LayerSpec], name: String, builder: inout LayerBuilder) {
        self.name = name
        inputShape = input
        var layers: [any Layer] = []
        var shape = input
        for (i, spec) in specs.enumerated() {
            let l = spec.make(input: shape, name: "\(name).block.\(i)", builder: &builder)
            precondition(!l.isView, "\(name): a residual block cannot hold a view (flatten / reshape)")
            layers.append(l)
            shape = l.outputShape
        }
        precondition(!layers.isEmpty, "\(name): a residual block needs at least one layer")
        precondition(shape == input, "\(name): the block maps \(input) to \(shape); a residual block must keep the shape")
        block = layers
    }

    public var parameterOffset: Int? { block.lazy.compactMap(\.parameterOffset).first }
    public var flopsPerRow: Int { block.reduce(0) { $0 + $1.flopsPerRow } }
    public var inputGradientFlopsPerRow: Int { block.reduce(0) { $0 + $1.inputGradientFlopsPerRow } }

    /// Floats rounded up to 16 (64 bytes), so every region stays aligned.
    @inline(__always) static func aligned(_ floats: Int) -> Int { (floats + 15) / 16 * 16 }

    /// Widest activation of the block, floats per row: the size of the two gradient buffers.
    var widest: Int { block.reduce(inputShape.count) { max($0, $1.outputShape.count) } }

    // scratch (floats, each region 64-byte aligned):
    //   out_i   [B, block[i] output]  for every inner layer (the last is block(x))
    //   s_i     block[i].scratchBytes(capacity)
    //   gradA, gradB [B, widest]      gradients between inner layers; gradA also the block's dx
    public func scratchBytes(capacity: Int) -> Int {
        var floats = 0
        for l in block { floats += Self.aligned(capacity * l.outputShape.count) + Self.aligned((l.scratchBytes(capacity: capacity) + 3) / 4) }
        return 4 * (floats + 2 * Self.aligned(capacity * widest))
    }

    /// Pointers of inner layer `i`: its output and its scratch, found by walking the layout.
    @inline(__always)
    func region(_ i: Int, base: UnsafeMutablePointer<Float>, capacity: Int) -> (out: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer) {
        var p = base
        for j in 0..<i {
            p += Self.aligned(capacity * block[j].outputShape.count) + Self.aligned((block[j].scratchBytes(capacity: capacity) + 3) / 4)
        }
        return (p, UnsafeMutableRawPointer(p + Self.aligned(capacity * block[i].outputShape.count)))
    }

    /// The two gradient buffers after every layer's region.
    @inline(__always)
    func gradientBuffers(base: UnsafeMutablePointer<Float>, capacity: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let last = region(block.count - 1, base: base, capacity: capacity)
        let a = UnsafeMutablePointer<Float>(last.scratch.assumingMemoryBound(to: Float.self))
            + Self.aligned((block[block.count - 1].scratchBytes(capacity: capacity) + 3) / 4)
        return (a, a + Self.aligned(capacity * widest))
    }

    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        for l in block { l.initialize(params, rng: &rng) }
    }

    public func initializeState(_ state: UnsafeMutablePointer<Float>) {
        for l in block { l.initializeState(state) }
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let base = c.scratch.bindMemory(to: Float.self, capacity: scratchBytes(capacity: c.capacity) / 4)
        var inner = c
        var input = x
        var out = base
        for i in block.indices {
            let r = region(i, base: base, capacity: c.capacity)
            inner.scratch = r.scratch
            block[i].forward(input, r.out, rows: rows, inner)
            input = UnsafePointer(r.out)
            out = r.out
        }
        let n = rows * inputShape.count
        for k in 0..<n { y[k] = out[k] + x[k] }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        let base = c.scratch.bindMemory(to: Float.self, capacity: scratchBytes(capacity: c.capacity) / 4)
        let n = rows * inputShape.count
        // The skip path: dx = dy, before the block may scale dy in place.
        if let dx { dx.update(from: dy, count: n) }
        var (spare, other) = gradientBuffers(base: base, capacity: c.capacity)
        var inner = c
        var g = dy
        for i in block.indices.reversed() {
            let r = region(i, base: base, capacity: c.capacity)
            let input = i == 0 ? x : UnsafePointer(region(i - 1, base: base, capacity: c.capacity).out)
            inner.scratch = r.scratch
            let target: UnsafeMutablePointer<Float>? = i == 0 && dx == nil ? nil : spare
            block[i].backward(input, r.out, g, target, rows: rows, inner)
            g = spare
            swap(&spare, &other)
        }
        if let dx { for k in 0..<n { dx[k] += g[k] } }
    }
}
