// Dimension legend (llm.c style), used in every shape comment of the model code:
//   B    rows in a batch (at most the workspace's `capacity`)
//   C    channels of an image activation, H x W its spatial size (rows stored NCHW)
//   N    values per channel in a BatchNorm batch: B * H * W (summed over ranks under SyncBN)
//   P    pixels per sample: inputDim = C * H * W of the input (784 for MNIST)
//   L    classes (one-hot label width)
//   D    latent dimensions (Gaussian); K categories (categorical; also `latent`)
//   E    encoder input width: P, plus L when the label joins at the input
//   Z    decoder input width: D (or K), plus L when the decoder is conditioned
//   F    width of the encoder's flattened features before the heads
//   Hd   heads width: 2D ([mean | logvar]) or K (category logits)

/// A VAE (conditional or not) built from an encoder stack and a decoder stack, over flat
/// parameter, gradient and state buffers.
///
/// encoder: x -> encoder stack -> flatten -> [| one-hot label] -> heads Linear -> [mean | logvar] or K logits
/// latent:  z = mean + exp(logvar / 2) * eps, or y = softmax((logits + Gumbel) / tau)
/// decoder: [z | one-hot label] -> decoder stack -> logits (P values; sigmoid gives pixels)
/// loss per sample: BCE(x, sigmoid(logits)) or |x - sigmoid(logits)|^2 summed over pixels,
///                  plus beta * KL(q || prior).
///
/// The model owns no buffers: callers pass the flat parameters (and gradients, and the
/// non-trainable state for BatchNorm), so the same code runs the trainer, evaluation and the
/// gradient checks. Activations and scratch live in a VAEWorkspace allocated once.
public final class VAE: Sendable {
    public let architecture: VAEArchitecture
    /// Trainable parameters: names, shapes, offsets in the flat parameter (and gradient) buffer.
    public let layout: ParameterLayout
    /// Non-trainable state (BatchNorm running_mean, running_var, num_batches_tracked): names,
    /// shapes, offsets in the flat state buffer. Checkpoints save and load it by name like the
    /// parameters; the optimizer and the gradient allreduce never see it.
    public let stateLayout: ParameterLayout
    /// Encoder layers in order, the label join included, ending with the heads.
    public let encoder: LayerSequence
    /// Mean and log-variance heads fused: rows 0..<latent are the mean, the rest the log-variance.
    /// For a categorical latent, the K category logits. None for a vector-quantized latent,
    /// whose encoder stack ends at z_e itself.
    public let heads: Linear?
    /// The codebook and nearest-code search of a vector-quantized latent (nil otherwise).
    public let quantizer: VectorQuantizer?
    public let decoder: LayerSequence

    public init(_ arch: VAEArchitecture) {
        architecture = arch
        var builder = LayerBuilder()
        // Encoder stack, then the heads.
        let encoderSpecs = arch.encoderStack
        let encoderNames = VAE.names(encoderSpecs, prefix: "encoder", mlp: arch.encoderLayers == nil, outputName: nil)
        let join = arch.conditionsEncoder && !arch.labelJoinsInput ? (classes: arch.classes, name: "encoder.label") : nil
        let trunk = LayerSequence(encoderSpecs, input: arch.labelJoinsInput ? .flat(arch.encoderInputWidth) : arch.inputShape,
                                  names: { encoderNames[$0] }, builder: &builder, join: join)
        if arch.latentKind == .vectorQuantized {
            let out = trunk.outputShape
            precondition(!arch.conditionsDecoder && !arch.conditionsEncoder, "a vector-quantized latent takes no label (conditioning none)")
            precondition(out.channels == arch.latent, "the encoder of a VQ-VAE must end with \(arch.latent) channels (latent), it ends at \(out)")
            heads = nil
            encoder = trunk
            // Reserved between encoder and decoder: backward finishes it right after the decoder.
            quantizer = VectorQuantizer(codes: arch.codebookSize, dimension: arch.latent, positions: out.spatial,
                                        commitment: arch.commitment, emaDecay: arch.codebookEMA,
                                        restartSteps: arch.codebookRestartSteps, builder: &builder)
        } else {
            let heads = Linear(inFeatures: trunk.outputShape.count, outFeatures: arch.headsWidth, layout: &builder.parameters)
            self.heads = heads
            quantizer = nil
            encoder = LayerSequence(layers: trunk.layers + [heads], input: trunk.inputShape)
            VAE.exportHeads(heads, arch, &builder.parameters)
        }
        let decoderSpecs = arch.decoderStack
        let decoderNames = VAE.names(decoderSpecs, prefix: "decoder", mlp: arch.decoderLayers == nil, outputName: "decoder.out")
        decoder = LayerSequence(decoderSpecs, input: .flat(arch.decoderInputWidth), names: { decoderNames[$0] },
                                builder: &builder, join: nil)
        precondition(decoder.outputShape.count == arch.inputDim,
                     "decoder stack ends at \(decoder.outputShape) (\(decoder.outputShape.count) values), the input has \(arch.inputDim)")
        if let last = decoder.compute.last {
            precondition(!decoder.layers[last].backwardReadsOutput,
                         "the decoder's last layer (\(decoder.layers[last].name)) must output logits: the loss applies the sigmoid itself")
        }
        precondition(!decoder.compute.isEmpty, "the decoder stack needs at least one layer with parameters")
        layout = builder.parameters
        stateLayout = builder.state
    }

    /// Public names of the heads: `encoder.mean.*` / `encoder.logvar.*` or `encoder.logits.*`.
    static func exportHeads(_ heads: Linear, _ arch: VAEArchitecture, _ layout: inout ParameterLayout) {
        let hidden = heads.inFeatures, latent = arch.latent
        switch arch.latentKind {
        case .gaussian:
            layout.export("encoder.mean.weight", shape: [latent, hidden], offset: heads.weightOffset)
            layout.export("encoder.mean.bias", shape: [latent], offset: heads.biasOffset)
            layout.export("encoder.logvar.weight", shape: [latent, hidden], offset: heads.weightOffset + latent * hidden)
            layout.export("encoder.logvar.bias", shape: [latent], offset: heads.biasOffset + latent)
        case .categorical:
            heads.export(as: "encoder.logits", to: &layout)
        case .vectorQuantized:
            break
        }
    }

    /// Public names of a stack's specs: nn.Sequential positions for explicit stacks; for the
    /// MLP form, Linear layers counted on their own and the last one named `outputName`.
    static func names(_ specs: [LayerSpec], prefix: String, mlp: Bool, outputName: String?) -> [String] {
        guard mlp else { return specs.indices.map { "\(prefix).layers.\($0)" } }
        var ordinal = 0
        let lastParameterized = specs.lastIndex { $0.hasParameters }
        return specs.indices.map { i in
            if let outputName, i == lastParameterized { return outputName }
            defer { if specs[i].hasParameters { ordinal += 1 } }
            return "\(prefix).layers.\(ordinal)"
        }
    }

    /// Every layer, encoder (with heads) then decoder: the parameter memory order.
    public var layers: [any Layer] { encoder.layers + decoder.layers }

    /// Floats in the flat parameter buffer (including alignment padding, which stays zero).
    public var parameterCount: Int { layout.totalCount }
    /// Floats in the flat state buffer (0 without BatchNorm).
    public var stateCount: Int { stateLayout.totalCount }

    /// Trainable parameters, excluding padding.
    public var trainableCount: Int { layout.exported.reduce(0) { $0 + $1.count } }

    /// FLOPs of the products (sgemm work: Linear, Conv) of one training step per sample:
    /// forward, plus backward at twice the forward cost, minus the first working layer's input
    /// gradient, which is never computed. Elementwise passes are not counted.
    public var trainingFlopsPerSample: Int {
        let forward = layers.reduce(0) { $0 + $1.flopsPerRow }
        let skipped = encoder.compute.first.map { encoder.layers[$0].inputGradientFlopsPerRow } ?? 0
        return 3 * forward - skipped
    }

    /// PyTorch's default init (Linear and Conv kaiming-uniform a = sqrt(5), i.e. uniform
    /// +-1/sqrt(fan_in), bias the same; BatchNorm weight 1, bias 0), drawn from `seed` layer by
    /// layer in parameter order.
    /// An EMA codebook (in the state buffer) is drawn into `state`, which it then needs.
    public func initialize(_ params: UnsafeMutablePointer<Float>, seed: UInt64, state: UnsafeMutablePointer<Float>? = nil) {
        var rng = SplitMix64(seed: seed)
        for l in encoder.layers { l.initialize(params, rng: &rng) }
        quantizer?.initialize(params, state: state, rng: &rng)
        for l in decoder.layers { l.initialize(params, rng: &rng) }
    }

    /// Initial non-trainable state: running means 0, running variances 1, batch counts 0.
    public func initializeState(_ state: UnsafeMutablePointer<Float>) {
        for l in layers { l.initializeState(state) }
        if let q = quantizer, q.restartSteps > 0 { (state + q.idleOffset).update(repeating: 0, count: q.codes) }
    }

    func context(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, state: UnsafeMutablePointer<Float>?, mode: ForwardMode,
                 updates: Bool, reducer: (any BatchStatisticsReducer)?) -> LayerContext {
        LayerContext(params: p, state: state, mode: mode, updatesRunningStatistics: updates, reducer: reducer,
                     ids: ws.ids, labels: ws.labels, noiseKey: ws.noiseKey, capacity: ws.capacity, scratch: ws.latentScratch,
                     sparseInputs: ws.sparseInputs)
    }

    // MARK: Forward pieces

    /// encoder input -> ws.heads ([mean | logvar] per row, or the K category logits).
    /// Eval mode by default (BatchNorm uses the running statistics in `state`).
    public func encode(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int, state: UnsafeMutablePointer<Float>? = nil,
                       mode: ForwardMode = .eval, reducer: (any BatchStatisticsReducer)? = nil) {
        encoder.forward(ws.encoderBuffers, rows: rows, context(p, ws, state: state, mode: mode, updates: false, reducer: reducer))
    }

    /// z = mean + std * eps (or, categorical, y = softmax((logits + Gumbel(eps)) / temperature))
    /// into the decoder input's first `latent` columns; returns the KL sum.
    public func sampleLatent(_ ws: VAEWorkspace, rows: Int, params p: UnsafePointer<Float>? = nil,
                             state: UnsafeMutablePointer<Float>? = nil) -> Double {
        switch architecture.latentKind {
        case .gaussian:
            return GaussianLatent.sample(heads: ws.heads.base, eps: ws.eps.base, z: ws.decoderInput.base,
                                         zStride: architecture.decoderInputWidth, rows: rows, latent: architecture.latent,
                                         rowKL: ws.rowKL.base)
        case .categorical:
            return CategoricalLatent.sample(logits: ws.heads.base, eps: ws.eps.base, y: ws.decoderInput.base,
                                            yStride: architecture.decoderInputWidth, rows: rows, categories: architecture.latent,
                                            temperature: ws.temperature, rowKL: ws.rowKL.base, scratch: ws.categoricalScratch)
        case .vectorQuantized:
            return quantize(p!, ws, rows: rows, counts: nil, state: state)
        }
    }

    /// Vector-quantized latent: nearest codes of ws.heads (z_e) into the decoder input and
    /// ws.codeIndices; the codebook + commitment loss per row into ws.rowKL; returns its sum.
    /// `counts` (ws.codeCounts in a training step) tallies the codes chosen.
    /// An EMA codebook is read from `state`.
    public func quantize(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int, counts: UnsafeMutablePointer<Double>?,
                         state: UnsafeMutablePointer<Float>? = nil) -> Double {
        let q = quantizer!
        return q.forward(codebook: q.codebook(params: p, state: state), zE: ws.heads.base, zQ: ws.decoderInput.base, zqStride: architecture.decoderInputWidth,
                           codeIndices: ws.codeIndices, rows: rows, rowLoss: ws.rowKL.base, counts: counts,
                           scratch: ws.quantizerScratch.base)
    }

    /// decoder input -> ws.logits. Eval mode by default.
    public func decode(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int, state: UnsafeMutablePointer<Float>? = nil,
                       mode: ForwardMode = .eval, reducer: (any BatchStatisticsReducer)? = nil) {
        decoder.forward(ws.decoderBuffers, rows: rows, context(p, ws, state: state, mode: mode, updates: false, reducer: reducer))
    }

    /// Per-row reconstruction terms into ws.rowBCE and their sum; with `gradientScale`, ws.logits
    /// becomes gradientScale * d(reconstruction)/d(logits) in the same pass.
    func reconstruction(_ ws: VAEWorkspace, rows: Int, gradientScale: Float?) -> Double {
        let a = architecture
        return ElementwiseLoss.evaluate(a.reconstruction, logits: ws.logits.base, targets: ws.encoderInput.base,
                                        targetStride: a.encoderInputWidth, rows: rows,
                                        width: a.inputDim, gradientScale: gradientScale, rowLoss: ws.rowBCE.base)
    }

    // MARK: Loss

    /// Forward pass and loss of `rows` samples (no gradients). The caller fills the encoder
    /// input, the labels (setLabel) and `eps`. Per-row terms land in ws.rowBCE / ws.rowKL
    /// (rowBCE holds the reconstruction term, BCE or squared error). Eval mode by default;
    /// `.training` gives the objective the gradient follows (batch statistics, dropout masks)
    /// without touching the running statistics.
    public func loss(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int, state: UnsafeMutablePointer<Float>? = nil,
                     mode: ForwardMode = .eval, reducer: (any BatchStatisticsReducer)? = nil) -> BatchLoss {
        let c = context(p, ws, state: state, mode: mode, updates: false, reducer: reducer)
        encoder.forward(ws.encoderBuffers, rows: rows, c)
        let kl = sampleLatent(ws, rows: rows, params: p, state: state)
        decoder.forward(ws.decoderBuffers, rows: rows, c)
        return BatchLoss(bce: reconstruction(ws, rows: rows, gradientScale: nil), kl: kl, rows: rows)
    }

    /// Loss and gradient of `rows` samples. Gradients are of `scale * sum over rows of
    /// (reconstruction + beta * kl)`: with scale = 1 / global batch, summing every rank's
    /// gradient gives the gradient of the global batch mean. `accumulate` adds to `grads`
    /// instead of overwriting.
    public func lossAndGradient(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ ws: VAEWorkspace,
                                rows: Int, scale: Float, beta: Float, accumulate: Bool,
                                state: UnsafeMutablePointer<Float>? = nil, reducer: (any BatchStatisticsReducer)? = nil,
                                codebookReducer: (any BatchStatisticsReducer)? = nil) -> BatchLoss {
        let loss = forwardForTraining(p, ws, rows: rows, scale: scale, state: state, reducer: reducer, codebookReducer: codebookReducer)
        backward(p, g, ws, rows: rows, scale: scale, beta: beta, accumulate: accumulate, reducer: reducer) { _ in }
        return loss
    }

    /// The forward half of a training step (training mode): activations are kept in `ws`, and
    /// ws.logits ends up holding scale * dL/dlogits (loss and its gradient share one pass).
    /// BatchNorm uses batch statistics (summed across ranks through `reducer` when given: SyncBN)
    /// and updates the running statistics in `state` when given; Dropout masks are keyed by
    /// (ws.seed, ws.step, sample id, layer, element).
    /// A vector-quantized latent adds the codes chosen to ws.codeCounts when `updatesCodeCounts`;
    /// an EMA codebook (in `state`, when given) takes one EMA step, its batch statistics summed
    /// across ranks through `codebookReducer` (always needed with more than one rank).
    /// `needs(offset)` is called, in forward order, just before each parameter block starting at
    /// `offset` is first read (the mirror of backward's `finished`): ZeRO-1 waits there for the
    /// range of parameters still being gathered.
    public func forwardForTraining(_ p: UnsafePointer<Float>, _ ws: VAEWorkspace, rows: Int, scale: Float,
                                   state: UnsafeMutablePointer<Float>? = nil,
                                   reducer: (any BatchStatisticsReducer)? = nil, updatesCodeCounts: Bool = true,
                                   codebookReducer: (any BatchStatisticsReducer)? = nil,
                                   needs: (Int) -> Void = { _ in }) -> BatchLoss {
        let c = context(p, ws, state: state, mode: .training, updates: true, reducer: reducer)
        encoder.forward(ws.encoderBuffers, rows: rows, c, needs: needs)
        var kl: Double
        if let q = quantizer {
            if !q.usesEMA { needs(q.codebookOffset) }
            kl = quantize(p, ws, rows: rows, counts: updatesCodeCounts ? ws.codeCounts : nil, state: state)
            if q.usesEMA, let state {
                q.updateEMA(state: state, zE: ws.heads.base, codeIndices: ws.codeIndices, rows: rows, reducer: codebookReducer,
                            scratch: ws.emaScratch)
            }
        } else {
            kl = sampleLatent(ws, rows: rows)
        }
        decoder.forward(ws.decoderBuffers, rows: rows, c, needs: needs)
        return BatchLoss(bce: reconstruction(ws, rows: rows, gradientScale: scale), kl: kl, rows: rows)
    }

    /// Dead-code restart after a training forward (a VQ latent with `codebookRestartSteps` > 0;
    /// otherwise nothing): codes no position of the global batch chose in that many forwards
    /// are re-seeded from this batch's encoder outputs, in `params` (gradient codebook) or
    /// `state` (EMA codebook). This rank's `rows` are rows `rowOffset..<rowOffset + rows` of
    /// the global batch's `globalRows`; `codebookReducer` sums over ranks. The draws are keyed
    /// by (ws.seed, ws.step, `draw`): pass the micro-batch index as `draw`. The codes
    /// re-seeded are in ws.restartedCodes (ws.restartedCount of them).
    public func restartDeadCodes(_ p: UnsafeMutablePointer<Float>, _ ws: VAEWorkspace, rows: Int, state: UnsafeMutablePointer<Float>,
                                 rowOffset: Int = 0, globalRows: Int? = nil, draw: Int = 0,
                                 codebookReducer: (any BatchStatisticsReducer)? = nil) {
        ws.restartedCount = 0
        guard let q = quantizer, q.restartSteps > 0 else { return }
        let key = GaussianNoise.key(seed: ws.seed, stream: VectorQuantizer.restartStream,
                                    counter: UInt64(ws.step) &* 0x1_0000 &+ UInt64(draw))
        ws.restartedCount = q.restartDeadCodes(params: p, state: state, zE: ws.heads.base, codeIndices: ws.codeIndices, rows: rows,
                                               rowOffset: rowOffset, globalRows: globalRows ?? rows, key: key,
                                               reducer: codebookReducer, scratch: ws.restartScratch, restarted: ws.restartedCodes)
    }

    /// The backward half: from ws.logits (already dL/dlogits) down to the first layer; pass the
    /// same `reducer` as the forward (BatchNorm sums its input-gradient terms through it).
    /// Layers finish in reverse memory order; after each layer with parameters,
    /// `finished(offset)` reports that every gradient at or above `offset` in the flat buffer is
    /// final, so a caller can start reducing those while the rest is computed.
    @inline(__always)
    public func backward(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ ws: VAEWorkspace,
                         rows: Int, scale: Float, beta: Float, accumulate: Bool,
                         reducer: (any BatchStatisticsReducer)? = nil, finished: (Int) -> Void) {
        let arch = architecture
        var c = context(p, ws, state: nil, mode: .training, updates: false, reducer: reducer)
        c.grads = g
        c.accumulate = accumulate
        decoder.backward(ws.decoderBuffers, dy: ws.logits.base, dInput: ws.dDecoderInput.base,
                         spare: ws.scratchA.base, other: ws.scratchB.base, rows: rows, c, finished: finished)
        switch arch.latentKind {
        case .gaussian:
            GaussianLatent.backward(heads: ws.heads.base, eps: ws.eps.base, dz: ws.dDecoderInput.base,
                                    dzStride: arch.decoderInputWidth, dHeads: ws.dHeads.base, rows: rows,
                                    latent: arch.latent, klScale: beta * scale)
        case .categorical:
            CategoricalLatent.backward(logits: ws.heads.base, eps: ws.eps.base, dy: ws.dDecoderInput.base,
                                       dyStride: arch.decoderInputWidth, dLogits: ws.dHeads.base, rows: rows,
                                       categories: arch.latent, temperature: ws.temperature, klScale: beta * scale,
                                       scratch: ws.categoricalScratch)
        case .vectorQuantized:
            let q = quantizer!
            q.backward(grads: q.usesEMA ? nil : g, zE: ws.heads.base, zQ: ws.decoderInput.base, codeIndices: ws.codeIndices,
                       dzQ: ws.dDecoderInput.base, dzqStride: arch.decoderInputWidth, dzE: ws.dHeads.base, rows: rows,
                       weight: beta * scale, accumulate: accumulate)
            if !q.usesEMA { finished(q.codebookOffset) }
        }
        // The first working encoder layer's input gradient is never needed.
        encoder.backward(ws.encoderBuffers, dy: ws.dHeads.base, dInput: nil,
                         spare: ws.scratchA.base, other: ws.scratchB.base, rows: rows, c, finished: finished)
    }

    /// Offsets where each layer's block (weights, then bias) starts, in backward order: the
    /// points at which `backward` reports progress.
    public var backwardBoundaries: [Int] {
        decoder.compute.reversed().compactMap { decoder.layers[$0].parameterOffset }
            + (quantizer.flatMap { $0.usesEMA ? nil : [$0.codebookOffset] } ?? [])
            + encoder.compute.reversed().compactMap { encoder.layers[$0].parameterOffset }
    }
}
