import Testing
@testable import Models

/// A training step (forward, backward) and an eval pass allocate nothing on the heap, for
/// every kind of stack. Counted on this thread only (other suites run in parallel); the
/// models are small so OpenBLAS takes its single-threaded path, which does not allocate.
struct AllocationTests {
    final class NoOpReducer: BatchStatisticsReducer {
        var calls = 0
        func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { calls += 1 }
    }

    static let cases: [(String, VAEArchitecture)] = [
        ("MLP", VAEArchitecture(inputDim: 12, classes: 3, encoderHidden: [8, 6], decoderHidden: [6], latent: 3)),
        ("gumbel", VAEArchitecture(inputDim: 12, classes: 3, encoderHidden: [8], decoderHidden: [6], latent: 4,
                                   conditioning: .none, latentKind: .categorical)),
        ("conv", SeedArchitectures.convVAE003(channels: [2, 3], latent: 3, classes: 3, side: 7)),
        ("BN + dropout", SeedArchitectures.cvae004(inputDim: 12, hidden: 6, latent: 3, classes: 3)),
        ("VQ-VAE with residual blocks", SeedArchitectures.vqVAE001(width: 4, dimension: 3, codes: 5, side: 8)),
        ("VQ-VAE, EMA codebook", { var a = SeedArchitectures.vqVAE001(width: 4, dimension: 3, codes: 5, side: 8); a.codebookEMA = 0.99; return a }()),
    ]

    @Test("the counter sees this thread's allocations")
    func counterWorks() {
        let before = ThreadAllocations.count
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 16)
        let after = ThreadAllocations.count
        p.deallocate()
        #expect(after >= before + 1)
    }

    @Test("zero heap allocations per step", arguments: 0..<cases.count)
    func zeroPerStep(index: Int) {
        let (name, arch) = Self.cases[index]
        let model = VAE(arch)
        let params = FloatBuffer(count: model.parameterCount)
        let grads = FloatBuffer(count: model.parameterCount)
        let state = FloatBuffer(count: model.stateCount)
        model.initializeState(state.base)
        model.initialize(params.base, seed: 1, state: state.base)
        let ws = GradientCheckTests.batch(arch, rows: 4, seed: 3, model: model)
        let reducer = NoOpReducer()
        var boundaries = 0
        func step(_ s: Int) {
            ws.step = s
            _ = model.forwardForTraining(params.base, ws, rows: 4, scale: 0.25, state: state.base, reducer: reducer,
                                         codebookReducer: reducer)
            model.backward(params.base, grads.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: s > 0, reducer: reducer) { _ in
                boundaries += 1
            }
            _ = model.loss(params.base, ws, rows: 4, state: state.base)
        }
        step(0)  // warm-up: lazy runtime metadata, OpenBLAS buffers
        let before = ThreadAllocations.count
        for s in 1...3 { step(s) }
        let allocations = ThreadAllocations.count - before
        #expect(allocations == 0, "\(name): \(allocations) allocations in 3 steps")
        #expect(boundaries == 4 * model.backwardBoundaries.count)
    }
}
