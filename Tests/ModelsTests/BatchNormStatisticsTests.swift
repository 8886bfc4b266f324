import Testing
@testable import Models

/// Running statistics follow PyTorch: momentum 0.1, unbiased variance, a batch counter; eval
/// mode normalizes with them.
struct BatchNormStatisticsTests {
    @Test("running mean, unbiased running variance and num_batches_tracked after two batches; eval uses them",
          arguments: [TensorShape.flat(4), TensorShape(2, 3, 3)])
    func runningStatistics(shape: TensorShape) {
        let rows = 5, n = shape.count, C = shape.channels, S = shape.spatial
        let h = LayerHarness(.batchNorm, input: shape, rows: rows, seed: 2, name: "bn")
        let rm = h.stateLayout.slot(named: "bn.running_mean")!, rv = h.stateLayout.slot(named: "bn.running_var")!
        let nbt = h.stateLayout.slot(named: "bn.num_batches_tracked")!
        #expect((0..<C).allSatisfy { h.state.base[rm.offset + $0] == 0 && h.state.base[rv.offset + $0] == 1 })
        var mean = [Double](repeating: 0, count: C), variance = [Double](repeating: 1, count: C)
        for batch in 0..<2 {
            let x = LayerHarness.random(rows * n, seed: UInt64(50 + batch), lo: -1, hi: 4)
            _ = h.forward(x, updates: true)
            for c in 0..<C {
                var values: [Double] = []
                for r in 0..<rows { for k in 0..<S { values.append(Double(x[r * n + c * S + k])) } }
                let m = values.reduce(0, +) / Double(values.count)
                let unbiased = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)
                mean[c] = 0.9 * mean[c] + 0.1 * m
                variance[c] = 0.9 * variance[c] + 0.1 * unbiased
            }
        }
        for c in 0..<C {
            #expect(abs(Double(h.state.base[rm.offset + c]) - mean[c]) < 1e-5 * (1 + abs(mean[c])))
            #expect(abs(Double(h.state.base[rv.offset + c]) - variance[c]) < 1e-5 * variance[c])
        }
        #expect(h.state.base[nbt.offset] == 2)
        // A training forward that is not a step (the gradient-check objective) leaves them alone.
        let before = h.state.toArray()
        _ = h.forward(LayerHarness.random(rows * n, seed: 99))
        #expect(h.state.toArray() == before)

        let x = LayerHarness.random(rows * n, seed: 60)
        let y = h.forward(x, mode: .eval)
        let gamma = h.parameterLayout.slot(named: "bn.weight")!, beta = h.parameterLayout.slot(named: "bn.bias")!
        for r in 0..<rows {
            for c in 0..<C {
                for k in 0..<S {
                    let i = r * n + c * S + k
                    let expected = (Double(x[i]) - Double(h.state.base[rm.offset + c])) / (Double(h.state.base[rv.offset + c]) + 1e-5).squareRoot()
                        * Double(h.params.base[gamma.offset + c]) + Double(h.params.base[beta.offset + c])
                    #expect(abs(Double(y[i]) - expected) < 1e-5 * (1 + abs(expected)))
                }
            }
        }
    }

    @Test("training mode output has per-channel batch mean beta and variance gamma^2 (biased, eps aside)")
    func trainingNormalizes() {
        let shape = TensorShape(3, 2, 2), rows = 6, n = shape.count
        let h = LayerHarness(.batchNorm, input: shape, rows: rows, seed: 8, name: "bn")
        let y = h.forward(LayerHarness.random(rows * n, seed: 1, lo: 2, hi: 9))
        let gamma = h.parameterLayout.slot(named: "bn.weight")!, beta = h.parameterLayout.slot(named: "bn.bias")!
        for c in 0..<3 {
            var values: [Double] = []
            for r in 0..<rows { for k in 0..<4 { values.append(Double(y[r * n + c * 4 + k])) } }
            let m = values.reduce(0, +) / Double(values.count)
            let v = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count)
            let g = Double(h.params.base[gamma.offset + c])
            #expect(abs(m - Double(h.params.base[beta.offset + c])) < 1e-5)
            #expect(abs(v - g * g) < 1e-3 * g * g)
        }
    }
}
