/// nn.BatchNorm1d (flat input [B, C]) and nn.BatchNorm2d (image [B, C, H, W]) with affine
/// weight and bias, momentum 0.1 and eps 1e-5 as PyTorch's defaults.
///
/// Training mode normalizes with the batch's per-channel mean and biased variance over
/// N = B * H * W values; eval mode with the running statistics. Running statistics follow
/// PyTorch: running = (1 - momentum) running + momentum batch, the variance term unbiased
/// (times N / (N - 1)), and num_batches_tracked counts the updates. They live in the state
/// buffer (`name.running_mean`, `.running_var`, `.num_batches_tracked`), which the optimizer
/// and the gradient allreduce never see.
///
/// SyncBN: with a reducer, the sums behind the statistics (count, sum x, sum x^2 per channel,
/// in float64 so the variance does not cancel) and behind the input gradient (sum dy,
/// sum dy xhat) are summed across ranks, so every rank normalizes with the global batch's
/// statistics and the input gradient is that of the global batch. The weight and bias
/// gradients stay per-rank sums; the usual gradient allreduce adds them.
///
/// Deterministic mode: a reducer with `recordsPieceStatistics` gets the forward sums through
/// `record` and sums nothing; the layer normalizes with its own rows' statistics and leaves
/// the running statistics to the reducer, which applies `updateRunningStatistics` later.
public final class BatchNorm: Layer {
    public let name: String
    public let inputShape: TensorShape
    public var outputShape: TensorShape { inputShape }
    public static let momentum = 0.1
    public static let eps = 1e-5
    /// C: channels (features, for the 1-D case).
    public let channels: Int
    /// H * W values per channel per row (1 for BatchNorm1d).
    public let spatial: Int
    /// Offsets of weight [C] and bias [C] in the parameter buffer.
    public let weightOffset: Int
    public let biasOffset: Int
    /// Offsets of running_mean [C], running_var [C], num_batches_tracked [] in the state buffer.
    public let runningMeanOffset: Int
    public let runningVarOffset: Int
    public let batchesTrackedOffset: Int

    public init(input: TensorShape, name: String, builder: inout LayerBuilder) {
        inputShape = input
        self.name = name
        channels = input.channels
        spatial = input.spatial
        weightOffset = builder.parameters.reserve(channels)
        biasOffset = builder.parameters.reserve(channels)
        builder.parameters.export(name + ".weight", shape: [channels], offset: weightOffset)
        builder.parameters.export(name + ".bias", shape: [channels], offset: biasOffset)
        runningMeanOffset = builder.state.reserve(channels)
        runningVarOffset = builder.state.reserve(channels)
        batchesTrackedOffset = builder.state.reserve(1)
        builder.state.export(name + ".running_mean", shape: [channels], offset: runningMeanOffset)
        builder.state.export(name + ".running_var", shape: [channels], offset: runningVarOffset)
        builder.state.export(name + ".num_batches_tracked", shape: [], offset: batchesTrackedOffset)
    }

    public var parameterOffset: Int? { weightOffset }

    // scratch (float64):
    //   sums  [2C + 1]: sum_c x, sum_c x^2, count (forward); sum_c dy, sum_c dy xhat (backward)
    //   mean  [C]: batch mean of the last training forward
    //   istd  [C]: 1 / sqrt(batch variance + eps) of the last training forward
    //   scale [C], shift [C]: y = x scale + shift for the pass (float64 of the float used)
    public func scratchBytes(capacity: Int) -> Int { (6 * channels + 1) * 8 }

    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        (params + weightOffset).update(repeating: 1, count: channels)
        (params + biasOffset).update(repeating: 0, count: channels)
    }

    public func initializeState(_ state: UnsafeMutablePointer<Float>) {
        (state + runningMeanOffset).update(repeating: 0, count: channels)
        (state + runningVarOffset).update(repeating: 1, count: channels)
        state[batchesTrackedOffset] = 0
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let C = channels, S = spatial
        let sums = c.scratch.bindMemory(to: Double.self, capacity: 6 * C + 1)
        let mean = sums + 2 * C + 1, istd = mean + C, scale = istd + C, shift = scale + C
        let gamma = c.params + weightOffset, beta = c.params + biasOffset
        if c.mode == .training {
            sums.update(repeating: 0, count: 2 * C + 1)
            for r in 0..<rows {
                for ch in 0..<C {
                    let (s, q) = BatchNorm.sums(x + (r * C + ch) * S, x + (r * C + ch) * S, count: S)
                    sums[ch] += s
                    sums[C + ch] += q
                }
            }
            sums[2 * C] = Double(rows * S)
            let perPiece = c.reducer?.recordsPieceStatistics ?? false
            if perPiece { c.reducer!.record(sums, count: 2 * C + 1) } else { c.reducer?.sum(sums, count: 2 * C + 1) }
            let n = sums[2 * C]
            precondition(n > 0, "\(name): BatchNorm over an empty batch")
            for ch in 0..<C {
                let m = sums[ch] / n
                let variance = max(sums[C + ch] / n - m * m, 0)
                mean[ch] = m
                istd[ch] = 1 / (variance + BatchNorm.eps).squareRoot()
                scale[ch] = Double(gamma[ch]) * istd[ch]
                shift[ch] = Double(beta[ch]) - m * scale[ch]
            }
            if c.updatesRunningStatistics && !perPiece, let state = c.state { updateRunningStatistics(state, sums: sums) }
        } else {
            guard let state = c.state else { preconditionFailure("\(name): eval mode needs the state buffer (running statistics)") }
            for ch in 0..<C {
                let inv = 1 / (Double(state[runningVarOffset + ch]) + BatchNorm.eps).squareRoot()
                scale[ch] = Double(gamma[ch]) * inv
                shift[ch] = Double(beta[ch]) - Double(state[runningMeanOffset + ch]) * scale[ch]
            }
        }
        if S == 1 {
            for r in 0..<rows {
                let xr = x + r * C, yr = y + r * C
                for ch in 0..<C { yr[ch] = Float(Double(xr[ch]) * scale[ch] + shift[ch]) }
            }
        } else {
            for r in 0..<rows {
                for ch in 0..<C {
                    let a = Float(scale[ch]), b = Float(shift[ch])
                    let o = (r * C + ch) * S
                    for k in 0..<S { y[o + k] = x[o + k] * a + b }
                }
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        let C = channels, S = spatial
        let sums = c.scratch.bindMemory(to: Double.self, capacity: 6 * C + 1)
        let mean = sums + 2 * C + 1, istd = mean + C
        let n = sums[2 * C]   // global count of the forward pass (kept: backward sums overwrite only [0, 2C))
        // Per-channel sum dy and sum dy xhat over this rank's rows: the bias and weight gradients.
        // sum dy xhat = istd (sum dy x - mean sum dy), in float64.
        sums.update(repeating: 0, count: 2 * C)
        for r in 0..<rows {
            for ch in 0..<C {
                let o = (r * C + ch) * S
                let (sdy, sdyx) = BatchNorm.sums(dy + o, x + o, count: S)
                sums[ch] += sdy
                sums[C + ch] += sdyx
            }
        }
        for ch in 0..<C { sums[C + ch] = istd[ch] * (sums[C + ch] - mean[ch] * sums[ch]) }
        let g = c.grads!
        for ch in 0..<C {
            let dw = Float(sums[C + ch]), db = Float(sums[ch])
            if c.accumulate {
                g[weightOffset + ch] += dw; g[biasOffset + ch] += db
            } else {
                g[weightOffset + ch] = dw; g[biasOffset + ch] = db
            }
        }
        guard let dx else { return }
        if !(c.reducer?.recordsPieceStatistics ?? false) { c.reducer?.sum(sums, count: 2 * C) }
        // dx = gamma istd / N (N dy - sum dy - xhat sum(dy xhat)), sums over the global batch;
        // per channel that is dx = a dy - b x + d with a = gamma istd, b = a istd mean(dy xhat),
        // d = b mean - a mean(dy), one float pass.
        let gamma = c.params + weightOffset
        for r in 0..<rows {
            for ch in 0..<C {
                let o = (r * C + ch) * S
                let k1 = Double(gamma[ch]) * istd[ch]
                let k3 = k1 * istd[ch] * sums[C + ch] / n
                let a = Float(k1), b = Float(k3), d = Float(k3 * mean[ch] - k1 * sums[ch] / n)
                for k in 0..<S { dx[o + k] = a * dy[o + k] - b * x[o + k] + d }
            }
        }
    }

    /// One update of the running statistics from a batch's forward sums [sum_c x (C),
    /// sum_c x^2 (C), count]: running = (1 - momentum) running + momentum batch, the variance
    /// unbiased, and one more tracked batch.
    public func updateRunningStatistics(_ state: UnsafeMutablePointer<Float>, sums: UnsafePointer<Double>) {
        let C = channels
        let n = sums[2 * C]
        let momentum = BatchNorm.momentum
        for ch in 0..<C {
            let m = sums[ch] / n
            let variance = max(sums[C + ch] / n - m * m, 0)
            let unbiased = n > 1 ? variance * n / (n - 1) : variance
            state[runningMeanOffset + ch] = Float((1 - momentum) * Double(state[runningMeanOffset + ch]) + momentum * m)
            state[runningVarOffset + ch] = Float((1 - momentum) * Double(state[runningVarOffset + ch]) + momentum * unbiased)
        }
        state[batchesTrackedOffset] += 1
    }

    /// (sum u, sum u v) over `count` floats in float64, eight lanes at a time (sum x and
    /// sum x^2 when u and v are the same plane).
    @inline(__always)
    static func sums(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, count: Int) -> (Double, Double) {
        var s = SIMD8<Double>(), q = SIMD8<Double>()
        var k = 0
        while k + 8 <= count {
            let a = SIMD8<Double>(FastMath.load(u + k)), b = SIMD8<Double>(FastMath.load(v + k))
            s += a
            q += a * b
            k += 8
        }
        var ss = s.sum(), qq = q.sum()
        while k < count {
            let a = Double(u[k])
            ss += a
            qq += a * Double(v[k])
            k += 1
        }
        return (ss, qq)
    }
}
