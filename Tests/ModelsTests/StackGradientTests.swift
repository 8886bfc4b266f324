import Testing
@testable import Models

/// Whole VAEs built from stacks: central finite differences of the training-mode objective
/// (batch statistics, fixed dropout masks) against the analytic backward, over every parameter.
struct StackGradientTests {
    static let cases: [(String, VAEArchitecture)] = [
        ("conv stack, MSE", SeedArchitectures.convVAE003(channels: [2, 3], latent: 3, classes: 3, side: 7)),
        ("conv stack, BCE, decoder-only label", SeedArchitectures.convVAE003(channels: [2, 3], latent: 2, classes: 3, side: 7,
                                                                             conditioning: .decoder, reconstruction: .bce)),
        ("conv stack, tanh, no BN, unconditioned", VAEArchitecture(
            inputShape: TensorShape(2, 5, 5), classes: 3,
            encoder: [.conv2d(out: 3, kernel: 3, stride: 2, padding: 1), .tanh, .flatten, .linear(out: 5), .relu],
            decoder: [.linear(out: 12), .reshape([3, 2, 2]), .convTranspose2d(out: 2, kernel: 3, stride: 2, padding: 0),
                      .sigmoid, .conv2d(out: 2, kernel: 3, stride: 1, padding: 1)],
            latent: 2, conditioning: .none, reconstruction: .mse)),
        ("MLP + BN + dropout, BCE (seed 004 shape)", SeedArchitectures.cvae004(inputDim: 12, hidden: 6, latent: 3, classes: 3, p: 0.3)),
        ("MLP + BN + dropout, MSE", SeedArchitectures.cvae004(inputDim: 11, hidden: 7, latent: 2, classes: 3, p: 0.25,
                                                               reconstruction: .mse)),
        ("MLP + BN + dropout, gumbel", VAEArchitecture(
            inputShape: .flat(10), classes: 3, encoder: [.linear(out: 6), .leakyReLU(slope: 0.1), .batchNorm, .dropout(p: 0.2)],
            decoder: [.linear(out: 5), .tanh, .batchNorm, .linear(out: 10)], latent: 3, conditioning: .decoder,
            latentKind: .categorical)),
    ]

    @Test("finite differences match the analytic gradient of stack VAEs", arguments: 0..<cases.count)
    func finiteDifferences(caseIndex: Int) {
        let (name, arch) = Self.cases[caseIndex]
        let model = VAE(arch)
        let params = FloatBuffer(count: model.parameterCount)
        let grads = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 7)
        let rows = 5
        let ws = GradientCheckTests.batch(arch, rows: rows, seed: 11, model: model)
        ws.seed = 3; ws.step = 9
        let scale: Float = 1.0 / 8, beta: Float = 1.5
        _ = model.lossAndGradient(params.base, grads.base, ws, rows: rows, scale: scale, beta: beta, accumulate: false)
        func objective() -> Double {
            Double(scale) * model.loss(params.base, ws, rows: rows, mode: .training).total(beta: Double(beta))
        }
        // BatchNorm over 5 rows and the squared error of a sigmoid are strongly curved, so the
        // truncation error of the differences needs a small h (2e-3 gives ~1%); float32
        // activations put a floor of a few 1e-3 under it at 1e-3. Each layer alone is checked
        // to 2e-3 in LayerGradientTests; this check is about the wiring, where a mistake
        // gives errors of order 1.
        let check = FiniteDifferenceCheck(model: model, params: params, grads: grads, h: 1e-3, objective: objective)
        #expect(check.referenceNorm > 0, "\(name): gradient is all zero")
        #expect(check.relative < 1e-2, "\(name): relative gradient error \(check.relative)")
    }

    @Test("full-size seed models build and take a finite training step")
    func seedModelsStep() {
        for arch in [SeedArchitectures.convVAE003(), SeedArchitectures.cvae004()] {
            let model = VAE(arch)
            let params = FloatBuffer(count: model.parameterCount)
            let grads = FloatBuffer(count: model.parameterCount)
            let state = FloatBuffer(count: model.stateCount)
            model.initialize(params.base, seed: 1)
            model.initializeState(state.base)
            let ws = GradientCheckTests.batch(arch, rows: 4, seed: 2, model: model)
            let loss = model.lossAndGradient(params.base, grads.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false,
                                             state: state.base)
            #expect(loss.bce.isFinite && loss.kl.isFinite && loss.bce > 0)
            #expect(grads.toArray().allSatisfy { $0.isFinite })
            #expect(grads.toArray().contains { $0 != 0 })
            // The running statistics moved, and eval mode runs on them.
            if let counter = model.stateLayout.exported.first(where: { $0.name.hasSuffix("num_batches_tracked") }) {
                #expect(state.base[counter.offset] == 1)
            }
            #expect(model.loss(params.base, ws, rows: 4, state: state.base).bce.isFinite)
        }
    }

    @Test("without BatchNorm or dropout, eval and training mode give the same loss")
    func evalMatchesTrainingWithoutBNOrDropout() {
        let arch = Self.cases[2].1
        let model = VAE(arch)
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 4)
        let ws = GradientCheckTests.batch(arch, rows: 3, seed: 5, model: model)
        let eval = model.loss(params.base, ws, rows: 3)
        let training = model.loss(params.base, ws, rows: 3, mode: .training)
        #expect(eval == training)
    }
}
