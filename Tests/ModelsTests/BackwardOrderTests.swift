import Testing
@testable import Models

/// The overlapped gradient allreduce trusts `finished(offset)`: offsets arrive in strictly
/// decreasing order, one per layer with parameters, and every gradient at or above an offset
/// is final when it is reported. Gradient accumulation adds.
struct BackwardOrderTests {
    static let arch = SeedArchitectures.convVAE003(channels: [2, 3], latent: 3, classes: 3, side: 7)

    @Test("reported offsets decrease, match backwardBoundaries, and the gradients above them are final")
    func offsetsAndFinality() {
        let model = VAE(Self.arch)
        let params = FloatBuffer(count: model.parameterCount), grads = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 2)
        let ws = GradientCheckTests.batch(Self.arch, rows: 4, seed: 3, model: model)
        _ = model.lossAndGradient(params.base, grads.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false)
        let final = grads.toArray()
        grads.base.update(repeating: .nan, count: model.parameterCount)
        _ = model.forwardForTraining(params.base, ws, rows: 4, scale: 0.25)
        var reported: [Int] = []
        var finalAtReport = true
        model.backward(params.base, grads.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false) { offset in
            reported.append(offset)
            for slot in model.layout.exported where slot.offset >= offset {
                for k in 0..<slot.count where grads.base[slot.offset + k] != final[slot.offset + k] { finalAtReport = false }
            }
        }
        #expect(reported == model.backwardBoundaries)
        #expect(zip(reported, reported.dropFirst()).allSatisfy { $0 > $1 })
        #expect(reported.last == 0)
        #expect(reported.count == model.layers.filter { $0.parameterOffset != nil }.count)
        #expect(finalAtReport)
    }

    @Test("accumulate adds conv, transposed conv and BatchNorm gradients")
    func accumulation() {
        let model = VAE(Self.arch)
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 3)
        let ws = GradientCheckTests.batch(Self.arch, rows: 4, seed: 5, model: model)
        let once = FloatBuffer(count: model.parameterCount), twice = FloatBuffer(count: model.parameterCount)
        _ = model.lossAndGradient(params.base, once.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false)
        _ = model.lossAndGradient(params.base, twice.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: false)
        _ = model.lossAndGradient(params.base, twice.base, ws, rows: 4, scale: 0.25, beta: 1, accumulate: true)
        for slot in model.layout.exported {
            for k in 0..<slot.count {
                let i = slot.offset + k
                #expect(abs(twice.base[i] - 2 * once.base[i]) <= 1e-6 * (1 + abs(once.base[i])), "\(slot.name)[\(k)]")
            }
        }
    }
}
