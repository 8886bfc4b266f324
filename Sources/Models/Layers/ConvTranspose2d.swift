/// nn.ConvTranspose2d(Cin, Cout, k, stride, padding, output_padding) on NCHW rows, PyTorch
/// weight layout [Cin, Cout, k, k] (a [Cin, Cout k k] matrix) and bias [Cout]. Output size
/// (H - 1) s - 2p + k + output_padding.
///
/// It is the adjoint of a Conv2d whose input is this layer's output: forward computes
/// dcol[Cout k k, n H W] = W^T x^T in one sgemm per chunk and folds it onto the output with
/// col2im; backward unfolds dy with im2col and needs two more sgemms (dW, dx).
public final class ConvTranspose2d: Layer {
    public let name: String
    public let inputShape: TensorShape
    public let outputShape: TensorShape
    /// The conv geometry from the output (image) to the input (grid).
    public let geometry: ConvGeometry
    /// weight [Cin, Cout, k, k] and bias [Cout] in the flat buffers.
    let parameters: ConvParameters
    public var weightOffset: Int { parameters.weightOffset }
    public var biasOffset: Int { parameters.biasOffset }

    public init(input: TensorShape, outChannels: Int, kernel: Int, stride: Int, padding: Int, outputPadding: Int,
                name: String, builder: inout LayerBuilder) {
        precondition(kernel >= 1 && stride >= 1 && padding >= 0, "\(name): bad convTranspose2d kernel/stride/padding")
        precondition(outputPadding >= 0 && outputPadding < max(stride, 1), "\(name): output_padding must be below the stride (PyTorch's rule)")
        let oh = ConvGeometry.transposedOutput(input.height, kernel: kernel, stride: stride, padding: padding, outputPadding: outputPadding)
        let ow = ConvGeometry.transposedOutput(input.width, kernel: kernel, stride: stride, padding: padding, outputPadding: outputPadding)
        precondition(oh >= 1 && ow >= 1, "\(name): convTranspose2d gives an empty output from \(input)")
        self.name = name
        inputShape = input
        outputShape = TensorShape(outChannels, oh, ow)
        geometry = ConvGeometry(channels: outChannels, height: oh, width: ow, kernel: kernel, stride: stride, padding: padding,
                                gridHeight: input.height, gridWidth: input.width)
        parameters = ConvParameters(name: name, weightShape: [input.channels, outChannels, kernel, kernel],
                                    biasCount: outChannels, builder: &builder)
    }

    public var parameterOffset: Int? { weightOffset }
    var inChannels: Int { inputShape.channels }
    var outChannels: Int { outputShape.channels }
    public var flopsPerRow: Int { 2 * inChannels * geometry.patch * geometry.positions }
    public var inputGradientFlopsPerRow: Int { flopsPerRow }

    // scratch: col [Cout k k, chunk H W], then xT [Cin, chunk H W] (input / dx, channel-major)
    public func scratchBytes(capacity: Int) -> Int {
        geometry.scratchBytes(capacity: capacity, channelMajor: inChannels)
    }

    /// PyTorch computes fan_in from weight dim 1 (Cout) times k k; bound 1 / sqrt(fan_in).
    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        parameters.initialize(params, bound: 1 / Float(geometry.patch).squareRoot(), rng: &rng)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let g = geometry, P = g.positions
        let (col, xT) = g.scratchBuffers(c, channelMajor: inChannels)
        let bias = c.params + biasOffset
        g.forEachChunk(rows: rows, capacity: c.capacity) { first, n in
            ConvGeometry.gather(x + first * inputShape.count, rows: n, channels: inChannels, plane: P, xT)
            ConvGeometry.gemm(true, false, g.patch, n * P, inChannels, c.params + weightOffset, g.patch, xT, n * P, 0, col, n * P)
            let yr = y + first * outputShape.count
            for b in 0..<n {
                for ch in 0..<outChannels {
                    (yr + (b * outChannels + ch) * g.imagePlane).update(repeating: bias[ch], count: g.imagePlane)
                }
            }
            g.col2im(col, rows: n, yr)
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        let g = geometry, P = g.positions
        let (col, xT) = g.scratchBuffers(c, channelMajor: inChannels)
        let grads = parameters.prepareGradients(c)
        ConvGeometry.biasGradient(dy, rows: rows, channels: outChannels, plane: g.imagePlane, grads + biasOffset)
        g.forEachChunk(rows: rows, capacity: c.capacity) { first, n in
            g.im2col(dy + first * outputShape.count, rows: n, col)
            ConvGeometry.gather(x + first * inputShape.count, rows: n, channels: inChannels, plane: P, xT)
            // dW[Cin, Cout k k] += xT[Cin, nP] col^T
            ConvGeometry.gemm(false, true, inChannels, g.patch, n * P, xT, n * P, col, n * P, 1, grads + weightOffset, g.patch)
            if let dx {
                // dxT[Cin, nP] = W col
                ConvGeometry.gemm(false, false, inChannels, n * P, g.patch, c.params + weightOffset, g.patch, col, n * P, 0, xT, n * P)
                ConvGeometry.scatter(xT, rows: n, channels: inChannels, plane: P, bias: nil, dx + first * inputShape.count)
            }
        }
    }
}
