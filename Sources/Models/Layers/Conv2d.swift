/// nn.Conv2d(Cin, Cout, k, stride, padding) on NCHW rows, PyTorch weight layout
/// [Cout, Cin, k, k] (row-major, so a [Cout, Cin k k] matrix) and bias [Cout].
///
/// A chunk of rows is unfolded by im2col into col [Cin k k, n OH OW] and multiplied once:
/// tmp[Cout, n OH OW] = W col (one large sgemm per chunk rather than one small one per image),
/// then scattered back to NCHW with the bias added. Backward recomputes col per chunk (cheaper
/// than keeping it for every row): dW += dy^T col^T, dcol = W^T dy^T, dx = col2im(dcol).
public final class Conv2d: Layer {
    public let name: String
    public let inputShape: TensorShape
    public let outputShape: TensorShape
    public let geometry: ConvGeometry
    /// weight [Cout, Cin, k, k] and bias [Cout] in the flat buffers.
    let parameters: ConvParameters
    public var weightOffset: Int { parameters.weightOffset }
    public var biasOffset: Int { parameters.biasOffset }

    public init(input: TensorShape, outChannels: Int, kernel: Int, stride: Int, padding: Int, name: String,
                builder: inout LayerBuilder) {
        precondition(kernel >= 1 && stride >= 1 && padding >= 0, "\(name): bad conv2d kernel/stride/padding")
        let oh = ConvGeometry.convOutput(input.height, kernel: kernel, stride: stride, padding: padding)
        let ow = ConvGeometry.convOutput(input.width, kernel: kernel, stride: stride, padding: padding)
        precondition(oh >= 1 && ow >= 1, "\(name): conv2d k\(kernel) s\(stride) p\(padding) leaves nothing of \(input)")
        self.name = name
        inputShape = input
        outputShape = TensorShape(outChannels, oh, ow)
        geometry = ConvGeometry(channels: input.channels, height: input.height, width: input.width, kernel: kernel,
                                stride: stride, padding: padding, gridHeight: oh, gridWidth: ow)
        parameters = ConvParameters(name: name, weightShape: [outChannels, input.channels, kernel, kernel],
                                    biasCount: outChannels, builder: &builder)
    }

    public var parameterOffset: Int? { weightOffset }
    var outChannels: Int { outputShape.channels }
    public var flopsPerRow: Int { 2 * outChannels * geometry.patch * geometry.positions }
    public var inputGradientFlopsPerRow: Int { flopsPerRow }

    // scratch: col [Cin k k, chunk OH OW], then tmp [Cout, chunk OH OW] (output / dy, channel-major)
    public func scratchBytes(capacity: Int) -> Int {
        geometry.scratchBytes(capacity: capacity, channelMajor: outChannels)
    }

    /// kaiming_uniform(a = sqrt(5)) gives bound 1 / sqrt(fan_in), fan_in = Cin k k; bias the same.
    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        parameters.initialize(params, bound: 1 / Float(geometry.patch).squareRoot(), rng: &rng)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let g = geometry, P = g.positions
        let (col, tmp) = g.scratchBuffers(c, channelMajor: outChannels)
        g.forEachChunk(rows: rows, capacity: c.capacity) { first, n in
            g.im2col(x + first * inputShape.count, rows: n, col)
            ConvGeometry.gemm(false, false, outChannels, n * P, g.patch, c.params + weightOffset, g.patch, col, n * P, 0, tmp, n * P)
            ConvGeometry.scatter(tmp, rows: n, channels: outChannels, plane: P, bias: c.params + biasOffset,
                                 y + first * outputShape.count)
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        let g = geometry, P = g.positions
        let (col, dyT) = g.scratchBuffers(c, channelMajor: outChannels)
        let grads = parameters.prepareGradients(c)
        ConvGeometry.biasGradient(dy, rows: rows, channels: outChannels, plane: P, grads + biasOffset)
        g.forEachChunk(rows: rows, capacity: c.capacity) { first, n in
            ConvGeometry.gather(dy + first * outputShape.count, rows: n, channels: outChannels, plane: P, dyT)
            g.im2col(x + first * inputShape.count, rows: n, col)
            // dW[Cout, Cin k k] += dyT[Cout, nP] col^T
            ConvGeometry.gemm(false, true, outChannels, g.patch, n * P, dyT, n * P, col, n * P, 1, grads + weightOffset, g.patch)
            if let dx {
                // dcol[Cin k k, nP] = W^T dyT, folded back onto the input.
                ConvGeometry.gemm(true, false, g.patch, n * P, outChannels, c.params + weightOffset, g.patch, dyT, n * P, 0, col, n * P)
                let dxr = dx + first * inputShape.count
                dxr.update(repeating: 0, count: n * inputShape.count)
                g.col2im(col, rows: n, dxr)
            }
        }
    }
}
