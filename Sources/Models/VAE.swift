/// A multilayer-perceptron VAE (conditional or not) over flat parameter and gradient buffers.
///
/// encoder: [x | y] -> (Linear -> act)* -> heads Linear -> [mean | logvar]
/// latent:  z = mean + exp(logvar / 2) * eps
/// decoder: [z | y] -> (Linear -> act)* -> Linear -> logits (sigmoid gives pixel probabilities)
/// loss per sample: BCE(x, sigmoid(logits)) summed over pixels + beta * KL(q(z|x, y) || N(0, I)).
///
/// The model owns no parameters: callers pass the flat buffers, so the same code runs the
/// trainer, evaluation and the gradient checks.
public final class VAE: Sendable {
    public let architecture: VAEArchitecture
    public let layout: ParameterLayout
    public let encoder: [Linear]
    /// Mean and log-variance heads fused: rows 0..<latent are the mean, the rest the log-variance.
    /// For a categorical latent, the K category logits.
    public let heads: Linear
    public let decoder: [Linear]
    public let output: Linear
    /// Layers in backward order, built once so the step loop allocates nothing.
    let decoderBackward: [Linear]
    let encoderBackward: [Linear]

    public init(_ arch: VAEArchitecture) {
        architecture = arch
        var layout = ParameterLayout()
        var width = arch.encoderInputWidth
        var enc: [Linear] = []
        for h in arch.encoderHidden {
            enc.append(Linear(inFeatures: width, outFeatures: h, layout: &layout))
            width = h
        }
        heads = Linear(inFeatures: width, outFeatures: arch.headsWidth, layout: &layout)
        width = arch.decoderInputWidth
        var dec: [Linear] = []
        for h in arch.decoderHidden {
            dec.append(Linear(inFeatures: width, outFeatures: h, layout: &layout))
            width = h
        }
        output = Linear(inFeatures: width, outFeatures: arch.inputDim, layout: &layout)
        encoder = enc
        decoder = dec
        decoderBackward = [output] + dec.reversed()
        encoderBackward = [heads] + enc.reversed()

        for (i, l) in enc.enumerated() { l.export(as: "encoder.layers.\(i)", to: &layout) }
        let hidden = heads.inFeatures, latent = arch.latent
        switch arch.latentKind {
        case .gaussian:
            layout.export("encoder.mean.weight", shape: [latent, hidden], offset: heads.weightOffset)
            layout.export("encoder.mean.bias", shape: [latent], offset: heads.biasOffset)
            layout.export("encoder.logvar.weight", shape: [latent, hidden], offset: heads.weightOffset + latent * hidden)
            layout.export("encoder.logvar.bias", shape: [latent], offset: heads.biasOffset + latent)
        case .categorical:
            heads.export(as: "encoder.logits", to: &layout)
        }
        for (i, l) in dec.enumerated() { l.export(as: "decoder.layers.\(i)", to: &layout) }
        output.export(as: "decoder.out", to: &layout)
        self.layout = layout
    }

    /// Floats in the flat parameter buffer (including alignment padding, which stays zero).
    public var parameterCount: Int { layout.totalCount }

    /// Trainable parameters, excluding padding.
    public var trainableCount: Int { layout.exported.reduce(0) { $0 + $1.count } }

    /// Floating-point operations of one training step per sample (forward, plus backward at
    /// twice the forward cost, minus the first layer's unused input gradient).
    public var trainingFlopsPerSample: Int {
        let all = encoder + [heads] + decoder + [output]
        let forward = all.reduce(0) { $0 + $1.flopsPerRow }
        return 3 * forward - (encoder.first ?? heads).flopsPerRow
    }

    /// Same init as PyTorch's nn.Linear defaults, drawn from `seed` layer by layer.
    public func initialize(_ params: UnsafeMutablePointer<Float>, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for l in encoder + [heads] + decoder + [output] { l.initialize(params, rng: &rng) }
    }

    // MARK: Forward pieces

    /// encoder input -> ws.heads ([mean | logvar] per row, or the K category logits).
    public func encode(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int) {
        var x = UnsafePointer(ws.encoderInput.base)
        for (i, layer) in encoder.enumerated() {
            let y = ws.encoderHidden[i].base
            layer.forwardNoBias(p, x: x, y: y, rows: rows)
            architecture.activation.biasForward(y, bias: p + layer.biasOffset, rows: rows, width: layer.outFeatures)
            x = UnsafePointer(y)
        }
        heads.forward(p, x: x, y: ws.heads.base, rows: rows)
    }

    /// z = mean + std * eps (or, categorical, y = softmax((logits + Gumbel(eps)) / temperature))
    /// into the decoder input's first `latent` columns; returns the KL sum.
    public func sampleLatent(_ ws: VAEWorkspace, rows: Int) -> Double {
        switch architecture.latentKind {
        case .gaussian:
            return GaussianLatent.sample(heads: ws.heads.base, eps: ws.eps.base, z: ws.decoderInput.base,
                                         zStride: architecture.decoderInputWidth, rows: rows, latent: architecture.latent,
                                         rowKL: ws.rowKL.base)
        case .categorical:
            return CategoricalLatent.sample(logits: ws.heads.base, eps: ws.eps.base, y: ws.decoderInput.base,
                                            yStride: architecture.decoderInputWidth, rows: rows, categories: architecture.latent,
                                            temperature: ws.temperature, rowKL: ws.rowKL.base)
        }
    }

    /// decoder input -> ws.logits.
    public func decode(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int) {
        var x = UnsafePointer(ws.decoderInput.base)
        for (i, layer) in decoder.enumerated() {
            let y = ws.decoderHidden[i].base
            layer.forwardNoBias(p, x: x, y: y, rows: rows)
            architecture.activation.biasForward(y, bias: p + layer.biasOffset, rows: rows, width: layer.outFeatures)
            x = UnsafePointer(y)
        }
        output.forward(p, x: x, y: ws.logits.base, rows: rows)
    }

    // MARK: Loss

    /// Forward pass and loss of `rows` samples (no gradients). The caller fills the encoder
    /// input, the decoder input's label columns and `eps`. Per-row terms land in ws.rowBCE / ws.rowKL.
    public func loss(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int) -> BatchLoss {
        encode(p, ws, rows: rows)
        let kl = sampleLatent(ws, rows: rows)
        decode(p, ws, rows: rows)
        let bce = BinaryCrossEntropy.evaluate(logits: ws.logits.base, targets: ws.encoderInput.base,
                                              targetStride: architecture.encoderInputWidth, rows: rows,
                                              width: architecture.inputDim, gradientScale: nil, rowLoss: ws.rowBCE.base)
        return BatchLoss(bce: bce, kl: kl, rows: rows)
    }

    /// Loss and gradient of `rows` samples. Gradients are of `scale * sum over rows of
    /// (bce + beta * kl)`: with scale = 1 / global batch, summing every rank's gradient gives
    /// the gradient of the global batch mean. `accumulate` adds to `grads` instead of overwriting.
    public func lossAndGradient(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ ws: VAEWorkspace,
                                rows: Int, scale: Float, beta: Float, accumulate: Bool) -> BatchLoss {
        let loss = forwardForTraining(p, ws, rows: rows, scale: scale)
        backward(p, g, ws, rows: rows, scale: scale, beta: beta, accumulate: accumulate) { _ in }
        return loss
    }

    /// The forward half of a training step: activations are kept in `ws`, and ws.logits ends
    /// up holding scale * dL/dlogits (BCE and its gradient share one pass).
    public func forwardForTraining(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int, scale: Float) -> BatchLoss {
        let arch = architecture
        encode(p, ws, rows: rows)
        let kl = sampleLatent(ws, rows: rows)
        decode(p, ws, rows: rows)
        let bce = BinaryCrossEntropy.evaluate(logits: ws.logits.base, targets: ws.encoderInput.base,
                                              targetStride: arch.encoderInputWidth, rows: rows,
                                              width: arch.inputDim, gradientScale: scale, rowLoss: ws.rowBCE.base)
        return BatchLoss(bce: bce, kl: kl, rows: rows)
    }

    /// The backward half: from ws.logits (already dL/dlogits) down to the first layer.
    /// Layers finish in reverse memory order; after each, `finished(offset)` reports that every
    /// gradient at or above `offset` in the flat buffer is final, so a caller can start
    /// reducing those while the rest is computed.
    @inline(__always)
    public func backward(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ ws: VAEWorkspace,
                         rows: Int, scale: Float, beta: Float, accumulate: Bool, finished: (Int) -> Void) {
        let arch = architecture
        // Decoder, top down. dy and dx alternate between the two scratch buffers.
        var dy = ws.logits.base
        var spare = ws.scratchA.base, other = ws.scratchB.base
        for (k, layer) in decoderBackward.enumerated() {
            let index = decoder.count - k          // hidden index feeding this layer's input
            let isFirst = index == 0
            let x: UnsafePointer<Float> = isFirst ? UnsafePointer(ws.decoderInput.base) : UnsafePointer(ws.decoderHidden[index - 1].base)
            let dx = isFirst ? ws.dDecoderInput.base : spare
            if k > 0 {
                arch.activation.backward(dy, outputs: ws.decoderHidden[index].base, count: rows * layer.outFeatures)
            }
            layer.backward(p, grads: g, x: x, dy: dy, dx: dx, rows: rows, accumulate: accumulate)
            finished(layer.weightOffset)
            if !isFirst { dy = dx; swap(&spare, &other) }
        }

        switch arch.latentKind {
        case .gaussian:
            GaussianLatent.backward(heads: ws.heads.base, eps: ws.eps.base, dz: ws.dDecoderInput.base,
                                    dzStride: arch.decoderInputWidth, dHeads: ws.dHeads.base, rows: rows,
                                    latent: arch.latent, klScale: beta * scale)
        case .categorical:
            CategoricalLatent.backward(logits: ws.heads.base, eps: ws.eps.base, dy: ws.dDecoderInput.base,
                                       dyStride: arch.decoderInputWidth, dLogits: ws.dHeads.base, rows: rows,
                                       categories: arch.latent, temperature: ws.temperature, klScale: beta * scale)
        }

        // Encoder, top down; the first layer's input gradient is never needed.
        dy = ws.dHeads.base
        for (k, layer) in encoderBackward.enumerated() {
            let index = encoder.count - k
            let isFirst = index == 0
            let x: UnsafePointer<Float> = isFirst ? UnsafePointer(ws.encoderInput.base) : UnsafePointer(ws.encoderHidden[index - 1].base)
            if k > 0 {
                arch.activation.backward(dy, outputs: ws.encoderHidden[index].base, count: rows * layer.outFeatures)
            }
            let dx: UnsafeMutablePointer<Float>? = isFirst ? nil : spare
            layer.backward(p, grads: g, x: x, dy: dy, dx: dx, rows: rows, accumulate: accumulate)
            finished(layer.weightOffset)
            if let dx { dy = dx; swap(&spare, &other) }
        }
    }

    /// Offsets where each layer's block (weights, then bias) starts, in backward order: the
    /// points at which `backward` reports progress.
    public var backwardBoundaries: [Int] { (decoderBackward + encoderBackward).map(\.weightOffset) }
}

/// Preallocated activations and scratch for up to `capacity` rows: a step allocates nothing.
public final class VAEWorkspace {
    public let capacity: Int
    /// [capacity, encoderInputWidth]: pixels in [0, 1], then the one-hot label if conditioned.
    public let encoderInput: FloatBuffer
    /// [capacity, decoderInputWidth]: z (written by the model), then the one-hot label if conditioned.
    public let decoderInput: FloatBuffer
    /// [capacity, latent]: reparameterization noise (standard normal), filled by the caller.
    /// A categorical latent turns it into Gumbel noise through the normal CDF.
    public let eps: FloatBuffer
    /// [capacity, 2 * latent]: mean | logvar; for a categorical latent, rows of K logits
    /// (`headsWidth` floats apart; the buffer keeps the Gaussian size so 2 * latent readers stay in bounds).
    public let heads: FloatBuffer
    /// Gumbel-softmax temperature tau (categorical latent only).
    public var temperature: Float = 1
    /// [capacity, inputDim]: decoder logits; after a training step, their gradient.
    public let logits: FloatBuffer
    /// Per-row BCE and KL of the last pass.
    public let rowBCE: FloatBuffer
    public let rowKL: FloatBuffer
    /// Sample ids of the rows (dataset indices), used to key the noise.
    public let ids: UnsafeMutablePointer<Int32>
    /// Labels of the rows.
    public let labels: UnsafeMutablePointer<Int32>

    let encoderHidden: [FloatBuffer]
    let decoderHidden: [FloatBuffer]
    let scratchA: FloatBuffer
    let scratchB: FloatBuffer
    let dDecoderInput: FloatBuffer
    let dHeads: FloatBuffer

    public init(architecture a: VAEArchitecture, capacity: Int) {
        self.capacity = capacity
        encoderInput = FloatBuffer(count: capacity * a.encoderInputWidth)
        decoderInput = FloatBuffer(count: capacity * a.decoderInputWidth)
        eps = FloatBuffer(count: capacity * a.latent)
        heads = FloatBuffer(count: capacity * 2 * a.latent)
        logits = FloatBuffer(count: capacity * a.inputDim)
        rowBCE = FloatBuffer(count: capacity)
        rowKL = FloatBuffer(count: capacity)
        encoderHidden = a.encoderHidden.map { FloatBuffer(count: capacity * $0) }
        decoderHidden = a.decoderHidden.map { FloatBuffer(count: capacity * $0) }
        let widest = (a.encoderHidden + a.decoderHidden + [1]).max()!
        scratchA = FloatBuffer(count: capacity * widest)
        scratchB = FloatBuffer(count: capacity * widest)
        dDecoderInput = FloatBuffer(count: capacity * a.decoderInputWidth)
        dHeads = FloatBuffer(count: capacity * 2 * a.latent)
        ids = .allocate(capacity: max(capacity, 1))
        ids.initialize(repeating: 0, count: max(capacity, 1))
        labels = .allocate(capacity: max(capacity, 1))
        labels.initialize(repeating: 0, count: max(capacity, 1))
    }

    deinit {
        ids.deallocate()
        labels.deallocate()
    }

    /// Writes the one-hot label columns of row `row` into the encoder and/or decoder inputs.
    @inline(__always)
    public func setLabel(row: Int, label: Int, architecture a: VAEArchitecture) {
        labels[row] = Int32(label)
        if a.conditionsEncoder {
            let base = encoderInput.base + row * a.encoderInputWidth + a.inputDim
            base.update(repeating: 0, count: a.classes)
            base[label] = 1
        }
        if a.conditionsDecoder {
            let base = decoderInput.base + row * a.decoderInputWidth + a.latent
            base.update(repeating: 0, count: a.classes)
            base[label] = 1
        }
    }
}
