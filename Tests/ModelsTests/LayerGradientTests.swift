import Testing
@testable import Models

/// Central finite differences of L = sum_i w_i y_i (random w) against each layer's backward,
/// over its input and every parameter, in training mode.
struct LayerGradientTests {
    static let cases: [(String, LayerSpec, TensorShape, Int)] = [
        ("linear", .linear(out: 5), .flat(7), 3),
        ("conv2d k3 s2 p1 on 7x9", .conv2d(out: 3, kernel: 3, stride: 2, padding: 1), TensorShape(2, 7, 9), 3),
        ("conv2d k2 s1 p0 on 5x5", .conv2d(out: 2, kernel: 2), TensorShape(3, 5, 5), 2),
        ("convTranspose2d k3 s2 p1 op1 on 3x5", .convTranspose2d(out: 3, kernel: 3, stride: 2, padding: 1, outputPadding: 1),
         TensorShape(2, 3, 5), 3),
        ("convTranspose2d k4 s3 p2 op2 on 4x3", .convTranspose2d(out: 2, kernel: 4, stride: 3, padding: 2, outputPadding: 2),
         TensorShape(3, 4, 3), 2),
        ("batchNorm 1-D", .batchNorm, .flat(4), 6),
        ("batchNorm 2-D", .batchNorm, TensorShape(3, 3, 5), 4),
        ("tanh", .tanh, .flat(9), 3),
        ("sigmoid", .sigmoid, .flat(9), 3),
        ("dropout p 0.4 (fixed mask)", .dropout(p: 0.4), .flat(11), 4),
        ("residual conv3x3 + tanh", .residual([.conv2d(out: 3, kernel: 3, stride: 1, padding: 1), .tanh]), TensorShape(3, 4, 5), 3),
        ("residual conv1x1", .residual([.conv2d(out: 2, kernel: 1)]), TensorShape(2, 3, 3), 2),
        ("residual BN + conv + sigmoid (inner scratch and reads of its own output)",
         .residual([.batchNorm, .conv2d(out: 2, kernel: 3, stride: 1, padding: 1), .sigmoid]), TensorShape(2, 3, 4), 3),
    ]

    @Test("finite differences match each layer's backward", arguments: 0..<cases.count)
    func layerGradient(index: Int) {
        let (name, spec, input, rows) = Self.cases[index]
        let harness = LayerHarness(spec, input: input, rows: rows, seed: UInt64(index + 3))
        let x = LayerHarness.random(rows * input.count, seed: 17)
        let w = LayerHarness.random(rows * harness.layer.outputShape.count, seed: 29)
        let (relative, reference) = harness.gradientError(x, weights: w, h: 1e-2)
        #expect(reference > 0, "\(name): zero gradient")
        #expect(relative < 2e-3, "\(name): relative gradient error \(relative)")
    }

    @Test("leaky ReLU and ReLU gradients away from the kink")
    func piecewiseLinear() {
        for spec in [LayerSpec.leakyReLU(slope: 0.2), .relu] {
            let harness = LayerHarness(spec, input: .flat(10), rows: 3)
            // Inputs at least 0.1 from 0, so +-h never crosses the kink.
            let x = LayerHarness.random(30, seed: 5).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
            let w = LayerHarness.random(30, seed: 6)
            let (relative, reference) = harness.gradientError(x, weights: w, h: 1e-2)
            #expect(reference > 0)
            #expect(relative < 1e-3, "\(spec): relative gradient error \(relative)")
        }
    }

    @Test("dropout: inverted scaling, about p of the elements dropped, same mask for the same ids, identity in eval")
    func dropoutMask() {
        let n = 2000
        let harness = LayerHarness(.dropout(p: 0.3), input: .flat(n), rows: 2)
        let x = [Float](repeating: 1, count: 2 * n)
        let y = harness.forward(x)
        let dropped = y.filter { $0 == 0 }.count
        #expect(y.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        #expect(abs(Double(dropped) / Double(2 * n) - 0.3) < 0.03, "dropped fraction \(Double(dropped) / Double(2 * n))")
        // Rows with different ids get different masks; the same id the same mask in any slot.
        #expect(Array(y[0..<n]) != Array(y[n..<(2 * n)]))
        swap(&harness.ids[0], &harness.ids[1])
        let swapped = harness.forward(x)
        #expect(Array(swapped[0..<n]) == Array(y[n..<(2 * n)]))
        #expect(harness.forward(x, mode: .eval) == x)
        // Another step (noise key) draws another mask.
        harness.noiseKey &+= 1
        #expect(harness.forward(x) != swapped)
    }
}

/// The squared-error loss against its textbook formula in float64.
struct SquaredErrorTests {
    @Test("sum of (sigmoid(l) - x)^2 and its gradient 2 (s - x) s (1 - s), tail included")
    func matchesReference() {
        let logits: [Float] = [-30, -5, -1, -0.1, 0, 0.1, 1, 5, 30, 2.5, -2.5, 0.7, -0.7, 17, 3]
        let targets: [Float] = [0, 1, 0.5, 0, 1, 0.3, 0, 1, 1, 0.9, 0.1, 0, 1, 1, 0.25]
        var l = logits
        var rowLoss: Float = 0
        let total = l.withUnsafeMutableBufferPointer { lp in
            ElementwiseLoss.evaluate(.mse, logits: lp.baseAddress!, targets: targets, targetStride: 15, rows: 1, width: 15,
                                     gradientScale: 0.5, rowLoss: &rowLoss)
        }
        var reference = 0.0
        for (k, (z, x)) in zip(logits, targets).enumerated() {
            let s = 1 / (1 + exp(-Double(z))), d = s - Double(x)
            reference += d * d
            #expect(abs(Double(l[k]) - 0.5 * 2 * d * s * (1 - s)) < 1e-6)
        }
        #expect(abs(total - reference) < 1e-5 * reference)
        #expect(abs(Double(rowLoss) - reference) < 1e-5 * reference)
    }
}

#if canImport(Glibc)
import Glibc
#endif
