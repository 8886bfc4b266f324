/// Preallocated activations and scratch for up to `capacity` rows: a step allocates nothing.
/// (Dimension names: see the legend at the top of VAE.swift.)
public final class VAEWorkspace {
    public let capacity: Int
    /// [B, E]: pixels in [0, 1] (NCHW for images), then the one-hot label if it joins at the input.
    public let encoderInput: FloatBuffer
    /// [B, Z]: z (written by the model), then the one-hot label if conditioned.
    public let decoderInput: FloatBuffer
    /// [B, D]: reparameterization noise (standard normal), filled by the caller.
    /// A categorical latent turns it into Gumbel noise through the normal CDF.
    public let eps: FloatBuffer
    /// [B, 2D]: mean | logvar; for a categorical latent, rows of K logits
    /// (`headsWidth` floats apart; the buffer keeps the Gaussian size so 2 * latent readers stay in bounds).
    public let heads: FloatBuffer
    /// Gumbel-softmax temperature tau (categorical latent only).
    public var temperature: Float = 1
    /// Linear layers may multiply only the nonzeros of mostly-zero inputs (`SparseInput`);
    /// `runtime.sparse_inputs` as it was when the workspace was made.
    public var sparseInputs = SparseInput.enabled
    /// Seed and step keying the Dropout masks (set by the caller before a training step).
    public var seed: UInt64 = 0
    public var step: Int = 0
    /// [B, P]: decoder logits; after a training forward, their gradient.
    public let logits: FloatBuffer
    /// [B]: per-row reconstruction term (BCE or squared error) of the last pass.
    public let rowBCE: FloatBuffer
    /// [B]: per-row KL of the last pass.
    public let rowKL: FloatBuffer
    /// [B] sample ids of the rows (dataset indices), used to key the noise.
    public let ids: UnsafeMutablePointer<Int32>
    /// [B] labels of the rows.
    public let labels: UnsafeMutablePointer<Int32>

    /// [B, max width of any layer's input or output]: layer input gradients, alternating.
    let scratchA: FloatBuffer
    let scratchB: FloatBuffer
    /// [B, Z]: gradient of the decoder input (dz | unused label columns).
    let dDecoderInput: FloatBuffer
    /// [B, 2D]: gradient of the heads.
    let dHeads: FloatBuffer
    /// [B, S] int32: the code chosen at each position by the last quantization (VQ latent).
    public let codeIndices: UnsafeMutablePointer<Int32>
    /// [K] float64: how many positions chose each code since the last reset (VQ latent): the
    /// training forward adds to it; the epoch's perplexity and codes used come from it.
    public let codeCounts: UnsafeMutablePointer<Double>
    /// K, the length of `codeCounts` (0 without a vector-quantized latent).
    public let codebookSize: Int
    /// [S K + K]: the quantizer's distance scores and code norms.
    let quantizerScratch: FloatBuffer
    /// [K + K D] float64: an EMA codebook step's counts and sums (summed across ranks in place).
    let emaScratch: UnsafeMutablePointer<Double>
    /// [K + K D] float64: a dead-code restart's counts and candidate slots (summed across ranks).
    let restartScratch: UnsafeMutablePointer<Double>
    /// [K] int32: the codes the last restart re-seeded (the first `restartedCount`).
    public let restartedCodes: UnsafeMutablePointer<Int32>
    public internal(set) var restartedCount = 0
    /// [3K] float64: softmax, log-softmax and relaxed sample of one row (categorical latent).
    let categoricalScratch: UnsafeMutablePointer<Double>
    /// Per-layer outputs [B, layer output width] and scratch (each layer's `scratchBytes`),
    /// kept alive here; the pointers below index into them.
    let storage: [FloatBuffer]
    let encoderBuffers: StackBuffers
    let decoderBuffers: StackBuffers
    /// Unused scratch slot of contexts built outside a layer.
    let latentScratch: UnsafeMutableRawPointer

    /// A workspace for `model`.
    public init(model: VAE, capacity: Int) {
        let a = model.architecture
        self.capacity = capacity
        encoderInput = FloatBuffer(count: capacity * a.encoderInputWidth)
        decoderInput = FloatBuffer(count: capacity * a.decoderInputWidth)
        eps = FloatBuffer(count: capacity * a.latent)
        let headsWidth = max(2 * a.latent, a.headsWidth)
        heads = FloatBuffer(count: capacity * headsWidth)
        logits = FloatBuffer(count: capacity * a.inputDim)
        rowBCE = FloatBuffer(count: capacity)
        rowKL = FloatBuffer(count: capacity)
        let widest = max(model.encoder.widest, model.decoder.widest, 1)
        scratchA = FloatBuffer(count: capacity * widest)
        scratchB = FloatBuffer(count: capacity * widest)
        dDecoderInput = FloatBuffer(count: capacity * a.decoderInputWidth)
        dHeads = FloatBuffer(count: capacity * headsWidth)
        let positions = model.quantizer?.positions ?? 0, codes = model.quantizer?.codes ?? 0
        codeIndices = .allocate(capacity: max(capacity * positions, 1))
        codeIndices.initialize(repeating: 0, count: max(capacity * positions, 1))
        codebookSize = codes
        codeCounts = .allocate(capacity: max(codes, 1))
        codeCounts.initialize(repeating: 0, count: max(codes, 1))
        quantizerScratch = FloatBuffer(count: model.quantizer?.scratchCount ?? 0)
        let emaCount = max(model.quantizer?.emaScratchCount ?? 0, 1)
        emaScratch = .allocate(capacity: emaCount)
        emaScratch.initialize(repeating: 0, count: emaCount)
        let restartCount = max(model.quantizer?.restartScratchCount ?? 0, 1)
        restartScratch = .allocate(capacity: restartCount)
        restartScratch.initialize(repeating: 0, count: restartCount)
        restartedCodes = .allocate(capacity: max(codes, 1))
        restartedCodes.initialize(repeating: 0, count: max(codes, 1))
        categoricalScratch = .allocate(capacity: 3 * max(a.latent, 1))
        categoricalScratch.initialize(repeating: 0, count: 3 * max(a.latent, 1))
        ids = .allocate(capacity: max(capacity, 1))
        ids.initialize(repeating: 0, count: max(capacity, 1))
        labels = .allocate(capacity: max(capacity, 1))
        labels.initialize(repeating: 0, count: max(capacity, 1))

        var storage: [FloatBuffer] = []
        func allocate(_ floats: Int) -> UnsafeMutablePointer<Float> {
            let b = FloatBuffer(count: floats)
            storage.append(b)
            return b.base
        }
        func buffers(_ s: LayerSequence, input: FloatBuffer, final: FloatBuffer) -> StackBuffers {
            let (inputs, outputs) = s.wire(input: input.base, final: final.base, allocate: allocate, capacity: capacity)
            let scratch = s.layers.map { UnsafeMutableRawPointer(allocate(($0.scratchBytes(capacity: capacity) + 3) / 4)) }
            return StackBuffers(inputs: inputs, outputs: outputs, scratch: scratch)
        }
        encoderBuffers = buffers(model.encoder, input: encoderInput, final: heads)
        decoderBuffers = buffers(model.decoder, input: decoderInput, final: logits)
        latentScratch = UnsafeMutableRawPointer(allocate(1))
        self.storage = storage
    }

    /// A workspace for the model `architecture` describes (the model's layer plan is rebuilt
    /// here; it is cheap and allocates no parameters).
    public convenience init(architecture a: VAEArchitecture, capacity: Int) {
        self.init(model: VAE(a), capacity: capacity)
    }

    deinit {
        ids.deallocate()
        labels.deallocate()
        categoricalScratch.deallocate()
        codeIndices.deallocate()
        codeCounts.deallocate()
        emaScratch.deallocate()
        restartScratch.deallocate()
        restartedCodes.deallocate()
    }

    /// Clears the code usage tally (the trainer does at the start of every epoch).
    public func resetCodeCounts() { codeCounts.update(repeating: 0, count: max(codebookSize, 1)) }

    /// Key of this step's Dropout masks.
    var noiseKey: UInt64 { GaussianNoise.key(seed: seed, stream: Dropout.noiseStream, counter: UInt64(step)) }

    /// Records row `row`'s label and writes its one-hot columns into the encoder input (when
    /// the label joins there) and the decoder input. An image encoder joins it after its
    /// flatten, from `labels`.
    @inline(__always)
    public func setLabel(row: Int, label: Int, architecture a: VAEArchitecture) {
        labels[row] = Int32(label)
        if a.labelJoinsInput {
            let base = encoderInput.base + row * a.encoderInputWidth + a.inputDim
            base.update(repeating: 0, count: a.classes)
            base[label] = 1
        }
        if a.conditionsDecoder {
            let base = decoderInput.base + row * a.decoderInputWidth + a.latentWidth
            base.update(repeating: 0, count: a.classes)
            base[label] = 1
        }
    }
}
