import Testing
@testable import Models

/// PyTorch's default initialization: kaiming_uniform(a = sqrt(5)) = uniform(+-1/sqrt(fan_in))
/// for weights and biases, fan_in from weight dims 1.. (so ConvTranspose2d uses Cout k k);
/// BatchNorm weight 1, bias 0; running mean 0, variance 1.
struct InitializationTests {
    /// Largest |value| of a tensor, and whether it stays within `bound`.
    static func extent(_ p: FloatBuffer, _ slot: TensorSlot) -> Float {
        (0..<slot.count).reduce(0) { max($0, abs(p.base[slot.offset + $1])) }
    }

    @Test("bounds follow fan_in = weight.size(1) * k * k, for conv and transposed conv alike")
    func convBounds() {
        let arch = VAEArchitecture(inputShape: TensorShape(3, 9, 9), classes: 2,
                                   encoder: [.conv2d(out: 40, kernel: 3, stride: 2, padding: 1), .batchNorm, .relu, .flatten],
                                   decoder: [.linear(out: 2 * 5 * 5), .reshape([2, 5, 5]),
                                             .convTranspose2d(out: 3, kernel: 3, stride: 2, padding: 1)],
                                   latent: 2)
        let model = VAE(arch)
        let p = FloatBuffer(count: model.parameterCount), s = FloatBuffer(count: model.stateCount)
        model.initialize(p.base, seed: 5)
        model.initializeState(s.base)
        let cases: [(String, Int)] = [("encoder.layers.0.weight", 3 * 9), ("encoder.layers.0.bias", 3 * 9),
                                      ("decoder.layers.2.weight", 3 * 9), ("decoder.layers.2.bias", 3 * 9),
                                      ("decoder.layers.0.weight", 2 + 2)]
        for (name, fanIn) in cases {
            let slot = model.layout.slot(named: name)!
            let bound = 1 / Float(fanIn).squareRoot()
            let e = Self.extent(p, slot)
            #expect(e <= bound, "\(name): |w| up to \(e), bound \(bound)")
            // Enough draws come close to the bound (a wrong fan_in would miss it by a factor).
            if slot.count >= 30 { #expect(e > 0.85 * bound, "\(name): |w| only up to \(e), bound \(bound)") }
        }
        // ConvTranspose2d weight is [Cin, Cout, k, k] = [2, 3, 3, 3]: fan_in 3 * 9, not 2 * 9.
        #expect(model.layout.slot(named: "decoder.layers.2.weight")?.shape == [2, 3, 3, 3])
        let w = model.layout.slot(named: "encoder.layers.1.weight")!, b = model.layout.slot(named: "encoder.layers.1.bias")!
        #expect((0..<40).allSatisfy { p.base[w.offset + $0] == 1 && p.base[b.offset + $0] == 0 })
        let rm = model.stateLayout.slot(named: "encoder.layers.1.running_mean")!
        let rv = model.stateLayout.slot(named: "encoder.layers.1.running_var")!
        #expect((0..<40).allSatisfy { s.base[rm.offset + $0] == 0 && s.base[rv.offset + $0] == 1 })
    }

    @Test("the MLP form expands to today's stack: same init draws as Linear layers in order")
    func mlpInitOrder() {
        let arch = VAEArchitecture(inputDim: 10, classes: 3, encoderHidden: [6], decoderHidden: [5], latent: 2)
        let model = VAE(arch)
        let p = FloatBuffer(count: model.parameterCount)
        model.initialize(p.base, seed: 9)
        // Redraw by hand: each Linear draws its weights then its bias from one SplitMix64 stream.
        var rng = SplitMix64(seed: 9)
        for (name, fanIn) in [("encoder.layers.0", 13), ("encoder.mean+logvar", 6), ("decoder.layers.0", 5), ("decoder.out", 5)] {
            let (w, b): (TensorSlot, TensorSlot)
            if name == "encoder.mean+logvar" {
                let mw = model.layout.slot(named: "encoder.mean.weight")!, mb = model.layout.slot(named: "encoder.mean.bias")!
                w = TensorSlot(name: "heads.weight", shape: [4, 6], offset: mw.offset)
                b = TensorSlot(name: "heads.bias", shape: [4], offset: mb.offset)
            } else {
                w = model.layout.slot(named: name + ".weight")!; b = model.layout.slot(named: name + ".bias")!
            }
            let bound = 1 / Float(fanIn).squareRoot()
            for slot in [w, b] {
                for k in 0..<slot.count { #expect(p.base[slot.offset + k] == rng.uniform(-bound, bound), "\(slot.name)[\(k)]") }
            }
        }
    }
}
