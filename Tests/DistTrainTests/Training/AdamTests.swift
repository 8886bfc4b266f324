import Foundation
import Testing
@testable import DistTrain

// Adam against an independent reference: PyTorch's torch.optim.Adam update (no weight decay,
// no amsgrad), written out here in Double:
//
//     m_t = beta1 m + (1 - beta1) g            v_t = beta2 v + (1 - beta2) g^2
//     c1 = 1 - beta1^t                          c2 = 1 - beta2^t
//     p  -= (lr / c1) * m_t / (sqrt(v_t) / sqrt(c2) + eps)
//
// Parameter counts that are not multiples of 8 so the scalar tail after the SIMD8 loop runs.

/// PyTorch's Adam in Double, one parameter tensor.
struct ReferenceAdam {
    var lr, beta1, beta2, eps: Double
    var m: [Double], v: [Double], t = 0

    init(count: Int, lr: Double, beta1: Double, beta2: Double, eps: Double) {
        (self.lr, self.beta1, self.beta2, self.eps) = (lr, beta1, beta2, eps)
        m = Array(repeating: 0, count: count)
        v = Array(repeating: 0, count: count)
    }

    mutating func step(_ p: inout [Double], _ g: [Double]) {
        t += 1
        let c1 = 1 - pow(beta1, Double(t)), c2 = 1 - pow(beta2, Double(t))
        for i in p.indices {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            p[i] -= (lr / c1) * m[i] / (v[i].squareRoot() / c2.squareRoot() + eps)
        }
    }
}

@Suite("Adam: PyTorch's update rule, bias correction included")
struct AdamTests {
    /// Gradients of step `s`: signs, magnitudes from 1e-9 (where eps dominates) to 1e2, and zeros.
    static func gradient(count: Int, step s: Int) -> [Float] {
        (0..<count).map { i in
            if (i + s) % 11 == 0 { return 0 }
            let magnitude = [1e-9, 1e-4, 0.03, 0.7, 2.5, 100][(i * 7 + s * 3) % 6]
            let sign: Float = (i * 5 + s) % 3 == 0 ? -1 : 1
            return sign * Float(magnitude) * (1 + Float(i % 5) / 10)
        }
    }

    /// Runs `steps` updates of disttrain's Adam and of the reference on the same gradients and
    /// compares parameters and both moments after every step.
    func compare(count: Int, steps: Int, lr: Float, beta1: Float, beta2: Float, eps: Float) {
        let adam = Adam(count: count, lr: lr, beta1: beta1, beta2: beta2, eps: eps)
        var reference = ReferenceAdam(count: count, lr: Double(lr), beta1: Double(beta1), beta2: Double(beta2), eps: Double(eps))
        var params: [Float] = (0..<count).map { Float($0 % 13) * 0.05 - 0.3 }
        var expected = params.map(Double.init)
        var magnitude = [Double](repeating: 0, count: count)
        for s in 1...steps {
            let g = Self.gradient(count: count, step: s)
            for i in 0..<count { magnitude[i] += abs(Double(g[i])) }
            params.withUnsafeMutableBufferPointer { p in
                g.withUnsafeBufferPointer { adam.update(p.baseAddress!, $0.baseAddress!, count: count) }
            }
            reference.step(&expected, g.map(Double.init))
            #expect(adam.step == s)
            var worst = (index: -1, error: 0.0)
            for i in 0..<count {
                // Float32 arithmetic: a few ulps of the parameter plus 1e-5 of the updates so far.
                let allowed = 4 * Double(params[i].ulp) + 1e-5 * abs(Double(lr)) * Double(s)
                let error = abs(Double(params[i]) - expected[i])
                if error > allowed && error > worst.error { worst = (i, error) }
                let mError = abs(Double(adam.m.base[i]) - reference.m[i]), vError = abs(Double(adam.v.base[i]) - reference.v[i])
                // m may cancel across steps: its float32 error is relative to the gradients summed.
                #expect(mError <= 1e-6 * magnitude[i] + 1e-30, "m[\(i)] after step \(s): \(adam.m.base[i]) vs \(reference.m[i])")
                #expect(vError <= 1e-6 * abs(reference.v[i]) + 1e-30, "v[\(i)] after step \(s): \(adam.v.base[i]) vs \(reference.v[i])")
            }
            #expect(worst.index < 0, """
                count \(count), step \(s): parameter \(worst.index) is \(worst.index < 0 ? 0 : params[worst.index]), \
                PyTorch's rule gives \(worst.index < 0 ? 0 : expected[worst.index]) (error \(worst.error))
                """)
        }
    }

    @Test("three steps against PyTorch's formulation, 37 parameters (SIMD lanes and a tail of 5)")
    func threeStepsDefaults() {
        compare(count: 37, steps: 3, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8)
    }

    @Test("three steps with other coefficients: a swapped beta or a dropped eps shows")
    func threeStepsOtherCoefficients() {
        compare(count: 29, steps: 3, lr: 0.05, beta1: 0.8, beta2: 0.95, eps: 1e-3)
    }

    @Test("counts 1 to 17: the tail alone, one SIMD block, and both", arguments: 1...17)
    func everyTailLength(count: Int) {
        compare(count: count, steps: 2, lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8)
    }

    @Test("the first step moves each parameter by lr against the gradient's sign (bias correction)")
    func firstStepIsSignTimesLR() {
        // With bias correction, step 1 is lr * g / (|g| + eps * sqrt(1 - beta2)): lr * sign(g)
        // for |g| >> eps. Without it, it would be lr * 0.1 / sqrt(0.001) = 3.16 lr.
        let count = 13
        let adam = Adam(count: count, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        var p = [Float](repeating: 1, count: count)
        var g = [Float](repeating: 0, count: count)
        for i in 0..<count { g[i] = i % 2 == 0 ? Float(i + 1) : -0.5 / Float(i) }
        p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { adam.update(pp.baseAddress!, $0.baseAddress!, count: count) } }
        for i in 0..<count {
            let expected: Float = g[i] > 0 ? 0.99 : 1.01
            #expect(abs(p[i] - expected) <= 2e-6, "p[\(i)] = \(p[i]), expected \(expected)")
        }
    }
}
