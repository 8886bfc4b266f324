
/// A fully connected layer in PyTorch's nn.Linear convention: y = x W^T + b with
/// W stored [out, in] row-major and b [out], both inside the flat parameter buffer.
///
/// All products go through MatrixProduct.sgemm (cblas_sgemm in blocks on the rank's threads); transposes are sgemm flags,
/// never copies. A ReLU or LeakyReLU that follows a Linear in a stack is fused into it
/// (`activation`): the bias add and the activation share one pass over the output, and
/// backward scales dy by the activation's derivative read off the stored output. This is the
/// MLP VAE's fast path. Inputs that are mostly zeros (MNIST pixels, ReLU outputs) multiply
/// only their nonzeros (`SparseInput`), decided batch by batch.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let name: String
    /// Fused activation applied after the bias; nil for a plain affine layer (heads, outputs).
    public let activation: Activation?
    /// Offsets of W and b in the parameter (and, identically, the gradient) buffer.
    public let weightOffset: Int
    public let biasOffset: Int

    /// Reserves W then b. With a non-empty `name` the layer exports them as `name.weight` and
    /// `name.bias`; an empty name leaves exporting to the caller (the fused VAE heads).
    public init(inFeatures: Int, outFeatures: Int, name: String = "", activation: Activation? = nil,
                layout: inout ParameterLayout) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.name = name
        self.activation = activation
        weightOffset = layout.reserve(inFeatures * outFeatures)
        biasOffset = layout.reserve(outFeatures)
        if !name.isEmpty { export(as: name, to: &layout) }
    }

    public var inputShape: TensorShape { .flat(inFeatures) }
    public var outputShape: TensorShape { .flat(outFeatures) }
    public var parameterOffset: Int? { weightOffset }
    public var inputGradientFlopsPerRow: Int { flopsPerRow }
    public var backwardReadsOutput: Bool { activation != nil }

    /// Mostly-zero inputs (pixels, ReLU outputs) take `SparseInput`'s products, chosen per batch.
    public var takesSparseInput: Bool { SparseInput.applies(inFeatures: inFeatures, outFeatures: outFeatures) }

    public func scratchBytes(capacity: Int) -> Int {
        takesSparseInput ? SparseInput.scratchBytes(capacity: capacity, inFeatures: inFeatures, outFeatures: outFeatures) : 0
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let sparse = c.sparseInputs && takesSparseInput
            && SparseInput.forward(weights: c.params + weightOffset, x: x, y: y, rows: rows, inFeatures: inFeatures,
                                   outFeatures: outFeatures, capacity: c.capacity, scratch: c.scratch)
        if !sparse { forwardNoBias(c.params, x: x, y: y, rows: rows) }
        if let activation {
            activation.biasForward(y, bias: c.params + biasOffset, rows: rows, width: outFeatures)
        } else {
            addBias(c.params, y: y, rows: rows)
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        activation?.backward(dy, outputs: y, count: rows * outFeatures)
        // Only where forward could have taken the sparse path: with sparse inputs off, the
        // scratch may still describe an earlier batch of the same row count.
        let sparse = c.sparseInputs && takesSparseInput
            && SparseInput.weightGradient(dy: dy, dw: c.grads! + weightOffset, rows: rows, inFeatures: inFeatures,
                                          outFeatures: outFeatures, capacity: c.capacity, accumulate: c.accumulate,
                                          scratch: c.scratch)
        // Below a ReLU only the input gradient's entries at the input's nonzeros count.
        let inputDone = sparse && c.inputFromReLU && dx != nil
            && SparseInput.maskedInputGradient(dy: dy, dx: dx!, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                               capacity: c.capacity, scratch: c.scratch)
        backward(c.params, grads: c.grads!, x: x, dy: dy, dx: inputDone ? nil : dx, rows: rows, accumulate: c.accumulate,
                 weightsDone: sparse)
    }

    /// Exports the layer under `name.weight` and `name.bias`.
    public func export(as name: String, to layout: inout ParameterLayout) {
        layout.export(name + ".weight", shape: [outFeatures, inFeatures], offset: weightOffset)
        layout.export(name + ".bias", shape: [outFeatures], offset: biasOffset)
    }

    /// PyTorch's default initialization: W and b uniform in +-1/sqrt(in)
    /// (kaiming_uniform with a = sqrt(5) reduces to exactly this bound).
    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        let bound = 1 / Float(inFeatures).squareRoot()
        for i in 0..<(inFeatures * outFeatures) { params[weightOffset + i] = rng.uniform(-bound, bound) }
        for i in 0..<outFeatures { params[biasOffset + i] = rng.uniform(-bound, bound) }
    }

    /// y[rows, out] = x[rows, in] W^T, without the bias (the caller fuses bias and activation).
    @inline(__always)
    public func forwardNoBias(_ params: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int) {
        MatrixProduct.sgemm(false, true, rows, outFeatures, inFeatures, x, inFeatures, params + weightOffset, inFeatures,
                            beta: 0, y, outFeatures)
    }

    /// y = x W^T + b (no activation), for output layers and heads.
    @inline(__always)
    public func forward(_ params: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int) {
        forwardNoBias(params, x: x, y: y, rows: rows)
        addBias(params, y: y, rows: rows)
    }

    /// y[rows, out] += b.
    @inline(__always)
    func addBias(_ params: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int) {
        var pass = Activation.RowPass(y: y, bias: params + biasOffset, rows: rows, width: outFeatures, slope: 1)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: pass.rowsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: Activation.RowPass.self).pointee
            for r in WorkerPool.range(chunk, count: p.rows, size: p.rowsPerChunk) {
                let row = p.y + r * p.width
                for j in 0..<p.width { row[j] += p.bias[j] }
            }
        }
    }

    /// Given dy = dL/dy [rows, out], writes dW and db into `grads` (adding to what is there when
    /// `accumulate`, for gradient accumulation) and, when `dx` is given, dx = dy W [rows, in].
    /// `weightsDone`: dW is already there (`SparseInput.weightGradient`).
    @inline(__always)
    public func backward(_ params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>,
                         x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                         rows: Int, accumulate: Bool, weightsDone: Bool = false) {
        // dW[out, in] (+)= dy^T x
        if !weightsDone {
            MatrixProduct.sgemm(true, false, outFeatures, inFeatures, rows, dy, outFeatures, x, inFeatures,
                                beta: accumulate ? 1 : 0, grads + weightOffset, inFeatures)
        }
        // db (+)= column sums of dy; row by row so the inner loop vectorizes. The WorkerPool
        // splits the columns, so every column is still summed over the rows in order.
        let db = grads + biasOffset
        if !accumulate { db.update(repeating: 0, count: outFeatures) }
        var pass = BiasGradientPass(db: db, dy: dy, rows: rows, width: outFeatures)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: outFeatures, size: Linear.biasColumnsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: BiasGradientPass.self).pointee
            let columns = WorkerPool.range(chunk, count: p.width, size: Linear.biasColumnsPerChunk)
            for r in 0..<p.rows {
                let row = p.dy + r * p.width
                for j in columns { p.db[j] += row[j] }
            }
        }
        if let dx {
            MatrixProduct.sgemm(false, false, rows, inFeatures, outFeatures, dy, outFeatures, params + weightOffset, inFeatures,
                                beta: 0, dx, inFeatures)
        }
    }

    struct BiasGradientPass {
        var db: UnsafeMutablePointer<Float>
        var dy: UnsafePointer<Float>
        var rows: Int
        var width: Int
    }

    /// Bias-gradient columns per WorkerPool chunk (a multiple of 8 so each chunk vectorizes).
    static let biasColumnsPerChunk = 128

    /// Multiply-adds of one forward pass per row (backward costs twice this).
    public var flopsPerRow: Int { 2 * inFeatures * outFeatures }
}

