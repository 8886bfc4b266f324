@testable import Models

/// One layer alone with its own parameter, gradient, state and scratch buffers, for tests.
final class LayerHarness {
    let layer: any Layer
    let params: FloatBuffer
    let grads: FloatBuffer
    let state: FloatBuffer
    let scratch: FloatBuffer
    let rows: Int
    let ids: UnsafeMutablePointer<Int32>
    let labels: UnsafeMutablePointer<Int32>
    let parameterLayout: ParameterLayout
    let stateLayout: ParameterLayout
    var noiseKey: UInt64 = 0x1234

    init(_ spec: LayerSpec, input: TensorShape, rows: Int, seed: UInt64 = 1, name: String = "layer") {
        var builder = LayerBuilder()
        layer = spec.make(input: input, name: name, builder: &builder)
        parameterLayout = builder.parameters
        stateLayout = builder.state
        params = FloatBuffer(count: builder.parameters.totalCount)
        grads = FloatBuffer(count: builder.parameters.totalCount)
        state = FloatBuffer(count: builder.state.totalCount)
        scratch = FloatBuffer(count: (layer.scratchBytes(capacity: rows) + 3) / 4)
        self.rows = rows
        ids = .allocate(capacity: rows)
        labels = .allocate(capacity: rows)
        for r in 0..<rows { ids[r] = Int32(100 + 7 * r); labels[r] = 0 }
        var rng = SplitMix64(seed: seed)
        layer.initialize(params.base, rng: &rng)
        layer.initializeState(state.base)
        // Move BatchNorm's weight 1 / bias 0 away from the identity so the check sees them.
        for slot in parameterLayout.exported where slot.name.hasSuffix(".weight") && slot.shape.count == 1 {
            for k in 0..<slot.count { params.base[slot.offset + k] = rng.uniform(0.5, 1.5) }
        }
        for slot in parameterLayout.exported where slot.name.hasSuffix(".bias") && slot.shape.count == 1 {
            for k in 0..<slot.count { params.base[slot.offset + k] = rng.uniform(-0.5, 0.5) }
        }
    }

    deinit { ids.deallocate(); labels.deallocate() }

    func context(_ mode: ForwardMode, reducer: (any BatchStatisticsReducer)? = nil, updates: Bool = false) -> LayerContext {
        LayerContext(params: params.base, grads: grads.base, state: state.base, mode: mode, updatesRunningStatistics: updates,
                     reducer: reducer, ids: ids, labels: labels, noiseKey: noiseKey, capacity: rows,
                     scratch: UnsafeMutableRawPointer(scratch.base))
    }

    func forward(_ x: [Float], mode: ForwardMode = .training, reducer: (any BatchStatisticsReducer)? = nil,
                 updates: Bool = false) -> [Float] {
        precondition(x.count == rows * layer.inputShape.count)
        var y = [Float](repeating: 0, count: rows * layer.outputShape.count)
        let c = context(mode, reducer: reducer, updates: updates)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in layer.forward(xp.baseAddress!, yp.baseAddress!, rows: rows, c) }
        }
        return y
    }

    /// Forward (training) then backward with dL/dy = `dy`; returns dx (parameter gradients in `grads`).
    func backward(_ x: [Float], dy: [Float], reducer: (any BatchStatisticsReducer)? = nil) -> [Float] {
        let y = forward(x, reducer: reducer)
        var d = dy
        var dx = [Float](repeating: 0, count: x.count)
        let c = context(.training, reducer: reducer)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                d.withUnsafeMutableBufferPointer { dp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        layer.backward(xp.baseAddress!, yp.baseAddress!, dp.baseAddress!, dxp.baseAddress!, rows: rows, c)
                    }
                }
            }
        }
        return dx
    }

    /// L = sum_i w_i y_i in float64.
    func objective(_ x: [Float], weights w: [Float]) -> Double {
        zip(forward(x), w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Relative error (norm of the difference over the norm of the numeric gradient) of the
    /// analytic input and parameter gradients of L = sum w y, by central differences.
    func gradientError(_ x: [Float], weights w: [Float], h: Float) -> (relative: Double, reference: Double) {
        let dx = backward(x, dy: w)
        let analyticParams = grads.toArray()
        var diff = 0.0, ref = 0.0
        var xs = x
        for i in 0..<xs.count {
            let saved = xs[i]
            xs[i] = saved + h; let up = objective(xs, weights: w)
            xs[i] = saved - h; let down = objective(xs, weights: w)
            xs[i] = saved
            let numeric = (up - down) / (2 * Double(h))
            diff += (numeric - Double(dx[i])) * (numeric - Double(dx[i])); ref += numeric * numeric
        }
        for slot in parameterLayout.exported {
            for k in 0..<slot.count {
                let i = slot.offset + k
                let saved = params.base[i]
                params.base[i] = saved + h; let up = objective(x, weights: w)
                params.base[i] = saved - h; let down = objective(x, weights: w)
                params.base[i] = saved
                let numeric = (up - down) / (2 * Double(h))
                diff += (numeric - Double(analyticParams[i])) * (numeric - Double(analyticParams[i])); ref += numeric * numeric
            }
        }
        return ((diff / max(ref, 1e-300)).squareRoot(), ref)
    }

    static func random(_ n: Int, seed: UInt64, lo: Float = -1, hi: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in rng.uniform(lo, hi) }
    }
}
