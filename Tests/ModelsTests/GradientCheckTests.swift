import Testing
@testable import Models

/// Central finite differences of the whole VAE objective against the analytic backward pass.
struct GradientCheckTests {
    /// A small model of every kind: the check runs over every parameter.
    static let cases: [(String, VAEArchitecture)] = [
        ("cvae relu", VAEArchitecture(inputDim: 12, classes: 3, encoderHidden: [7, 5], decoderHidden: [6, 5], latent: 3,
                                      activation: .relu, conditioning: .both)),
        ("decoder-only leaky", VAEArchitecture(inputDim: 12, classes: 3, encoderHidden: [6], decoderHidden: [5, 4], latent: 2,
                                               activation: .leakyReLU(slope: 0.2), conditioning: .decoder)),
        ("plain vae no hidden decoder", VAEArchitecture(inputDim: 10, classes: 3, encoderHidden: [6], decoderHidden: [], latent: 2,
                                                        activation: .relu, conditioning: .none)),
        ("odd width tail", VAEArchitecture(inputDim: 19, classes: 4, encoderHidden: [5], decoderHidden: [7], latent: 3,
                                           activation: .leakyReLU(slope: 0.01), conditioning: .both)),
        ("gumbel categorical plain", VAEArchitecture(inputDim: 12, classes: 3, encoderHidden: [7], decoderHidden: [6], latent: 4,
                                                     activation: .relu, conditioning: .none, latentKind: .categorical)),
        ("gumbel categorical decoder-conditioned", VAEArchitecture(inputDim: 11, classes: 3, encoderHidden: [6, 5], decoderHidden: [5],
                                                                   latent: 3, activation: .leakyReLU(slope: 0.2),
                                                                   conditioning: .decoder, latentKind: .categorical)),
    ]

    /// Builds a workspace with random pixels, labels and noise for `rows` samples.
    static func batch(_ a: VAEArchitecture, rows: Int, seed: UInt64, model: VAE? = nil) -> VAEWorkspace {
        let ws = model.map { VAEWorkspace(model: $0, capacity: rows) } ?? VAEWorkspace(architecture: a, capacity: rows)
        var rng = SplitMix64(seed: seed)
        for r in 0..<rows {
            for j in 0..<a.inputDim {
                // Mix of exact 0/1 pixels (as in MNIST) and grays.
                let u = rng.unitFloat()
                ws.encoderInput.base[r * a.encoderInputWidth + j] = u < 0.3 ? 0 : (u > 0.8 ? 1 : u)
            }
            ws.setLabel(row: r, label: rng.below(a.classes), architecture: a)
            ws.ids[r] = Int32(1000 + 13 * r)
            for j in 0..<a.latent { ws.eps.base[r * a.latent + j] = rng.uniform(-2, 2) }
        }
        // A temperature away from 1 so the check exercises the 1 / tau factor.
        if a.latentKind == .categorical { ws.temperature = 0.7 }
        return ws
    }

    static func objective(_ model: VAE, _ p: FloatBuffer, _ ws: VAEWorkspace, rows: Int, scale: Double, beta: Double) -> Double {
        scale * model.loss(p.base, ws, rows: rows).total(beta: beta)
    }

    @Test("finite differences match the analytic gradient", arguments: 0..<cases.count)
    func finiteDifferences(caseIndex: Int) throws {
        let (name, arch) = Self.cases[caseIndex]
        let model = VAE(arch)
        let params = FloatBuffer(count: model.parameterCount)
        let grads = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 7)
        let rows = 5
        let ws = Self.batch(arch, rows: rows, seed: 11)
        let scale: Float = 1.0 / 8, beta: Float = 1.5

        _ = model.lossAndGradient(params.base, grads.base, ws, rows: rows, scale: scale, beta: beta, accumulate: false)

        let check = FiniteDifferenceCheck(model: model, params: params, grads: grads, h: 2e-3) {
            Self.objective(model, params, ws, rows: rows, scale: Double(scale), beta: Double(beta))
        }
        #expect(check.referenceNorm > 0, "\(name): gradient is all zero")
        #expect(check.relative < 5e-3, "\(name): relative gradient error \(check.relative)")
        #expect(check.worst < 0.05, "\(name): worst element error \(check.worst)")
    }

    @Test("categorical posterior sums to 1, KL >= 0, KL = 0 for uniform logits and log K when fully peaked")
    func categoricalKL() {
        let k = 5, rows = 3
        // Row 0 uniform logits, rows 1 and 2 arbitrary (one strongly peaked).
        let logits: [Float] = [0.3, 0.3, 0.3, 0.3, 0.3,
                               1.2, -0.4, 2.5, 0.0, -3.0,
                               40, -10, 0, 5, -2]
        let eps: [Float] = (0..<(rows * k)).map { Float($0 % 7) * 0.6 - 1.8 }
        var y = [Float](repeating: 0, count: rows * k), rowKL = [Float](repeating: 0, count: rows)
        let total = CategoricalLatent.sample(logits: logits, eps: eps, y: &y, yStride: k, rows: rows, categories: k,
                                             temperature: 0.5, rowKL: &rowKL)
        // KL(q || Uniform(K)) = log K - H(q): 0 at uniform q, its maximum log K at a one-hot q
        // (-sum q log q = log K is the entropy of the uniform row).
        #expect(abs(Double(rowKL[0])) < 1e-6)
        #expect(abs(Double(rowKL[2]) - log(Double(k))) < 1e-6)
        for r in 0..<rows {
            #expect(rowKL[r] >= 0)
            // q = softmax(logits) sums to 1, and so does the relaxed sample y.
            let row = logits[(r * k)..<((r + 1) * k)].map(Double.init)
            let m = row.max()!
            let z = row.map { exp($0 - m) }.reduce(0, +)
            let q = row.map { exp($0 - m) / z }
            #expect(abs(q.reduce(0, +) - 1) < 1e-12)
            let reference = zip(q, row).reduce(0.0) { $0 + ($1.0 > 0 ? $1.0 * log($1.0 * Double(k)) : 0) }
            #expect(abs(Double(rowKL[r]) - reference) < 1e-5)
            #expect(abs(y[(r * k)..<((r + 1) * k)].reduce(0, +) - 1) < 1e-5)
            #expect(y[(r * k)..<((r + 1) * k)].allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        #expect(abs(total - rowKL.reduce(0.0) { $0 + Double($1) }) < 1e-5)
        // The Gumbel transform stays finite at extreme normal draws (u is clamped).
        for e: Float in [-40, -8, 0, 8, 40] { #expect(CategoricalLatent.gumbel(e).isFinite) }
    }

    @Test("categorical layout exports the logits head")
    func categoricalLayout() {
        let arch = VAEArchitecture(inputDim: 784, classes: 10, encoderHidden: [400], decoderHidden: [400], latent: 10,
                                   conditioning: .none, latentKind: .categorical)
        let model = VAE(arch)
        #expect(model.layout.exported.map(\.name) == [
            "encoder.layers.0.weight", "encoder.layers.0.bias", "encoder.logits.weight", "encoder.logits.bias",
            "decoder.layers.0.weight", "decoder.layers.0.bias", "decoder.out.weight", "decoder.out.bias",
        ])
        #expect(model.layout.slot(named: "encoder.logits.weight")?.shape == [10, 400])
        #expect(model.trainableCount == 784 * 400 + 400 + 400 * 10 + 10 + 10 * 400 + 400 + 400 * 784 + 784)
        #expect(model.trainingFlopsPerSample == 3 * 2 * (784 * 400 + 400 * 10 + 10 * 400 + 400 * 784) - 2 * 784 * 400)
    }

    @Test("accumulate adds gradients instead of overwriting")
    func accumulation() {
        let arch = Self.cases[0].1
        let model = VAE(arch)
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 3)
        let ws = Self.batch(arch, rows: 4, seed: 5)
        let once = FloatBuffer(count: model.parameterCount)
        let twice = FloatBuffer(count: model.parameterCount)
        _ = model.lossAndGradient(params.base, once.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false)
        _ = model.lossAndGradient(params.base, twice.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false)
        _ = model.lossAndGradient(params.base, twice.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: true)
        for i in 0..<model.parameterCount {
            #expect(abs(twice.base[i] - 2 * once.base[i]) <= 1e-6 * (1 + abs(once.base[i])))
        }
    }

    @Test("BCE from logits matches the textbook formula, including saturated logits")
    func bceMatchesReference() {
        let logits: [Float] = [-120, -30, -5, -1, -0.1, 0, 0.1, 1, 5, 30, 120, 2.5, -2.5, 0.7, -0.7, 17]
        let targets: [Float] = [0, 1, 0.5, 0, 1, 0.3, 0, 1, 1, 0, 1, 0.9, 0.1, 0, 1, 1]
        var l = logits
        let total = l.withUnsafeMutableBufferPointer { lp in
            targets.withUnsafeBufferPointer { tp in
                ElementwiseLoss.evaluate(.bce, logits: lp.baseAddress!, targets: tp.baseAddress!, targetStride: 16, rows: 1,
                                         width: 16, gradientScale: 1, rowLoss: nil)
            }
        }
        var reference = 0.0
        for (z, x) in zip(logits, targets) {
            let zd = Double(z), xd = Double(x)
            // Stable reference in float64.
            reference += max(zd, 0) - zd * xd + log(1 + exp(-abs(zd)))
        }
        #expect(total.isFinite)
        #expect(abs(total - reference) < 1e-5 * abs(reference))
        for (k, (z, x)) in zip(logits, targets).enumerated() {
            let sigmoid = 1 / (1 + exp(-Double(z)))
            #expect(abs(Double(l[k]) - (sigmoid - Double(x))) < 1e-6)
        }
    }

    @Test("fast exp is accurate over the range the loss uses")
    func fastExpAccuracy() {
        var worst: Float = 0
        var x: Float = -87
        while x <= 0 {
            let v = FastMath.expNonPositive(SIMD8(repeating: x))[0]
            let ref = Float(exp(Double(x)))
            worst = max(worst, abs(v - ref) / ref)
            x += 0.0137
        }
        #expect(worst < 5e-7)
    }

    @Test("layout exports PyTorch names covering every trainable float exactly once")
    func layoutNames() {
        let model = VAE(VAEArchitecture())
        let names = model.layout.exported.map(\.name)
        #expect(names == [
            "encoder.layers.0.weight", "encoder.layers.0.bias", "encoder.layers.1.weight", "encoder.layers.1.bias",
            "encoder.mean.weight", "encoder.mean.bias", "encoder.logvar.weight", "encoder.logvar.bias",
            "decoder.layers.0.weight", "decoder.layers.0.bias", "decoder.layers.1.weight", "decoder.layers.1.bias",
            "decoder.out.weight", "decoder.out.bias",
        ])
        #expect(model.layout.slot(named: "encoder.layers.0.weight")?.shape == [512, 794])
        #expect(model.layout.slot(named: "decoder.layers.0.weight")?.shape == [512, 26])
        #expect(model.trainableCount == 794 * 512 + 512 + 512 * 512 + 512 + 2 * (512 * 16 + 16)
                + 26 * 512 + 512 + 512 * 512 + 512 + 512 * 784 + 784)
        var covered = [Bool](repeating: false, count: model.parameterCount)
        for s in model.layout.exported {
            for i in s.offset..<(s.offset + s.count) {
                #expect(!covered[i]); covered[i] = true
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
