import Testing
@testable import Models

/// Output shapes against PyTorch's formulas, computed here independently.
struct ConvShapeTests {
    @Test("Conv2d output is floor((H + 2p - k) / s) + 1 per side")
    func conv2dShapes() {
        for (h, w, k, s, p) in [(28, 28, 3, 2, 1), (7, 7, 3, 2, 1), (4, 4, 3, 2, 1), (9, 6, 4, 3, 2), (5, 8, 1, 1, 0), (11, 13, 5, 2, 0)] {
            var b = LayerBuilder()
            let layer = LayerSpec.conv2d(out: 6, kernel: k, stride: s, padding: p).make(input: TensorShape(3, h, w), name: "c", builder: &b)
            let expectH = Int((Double(h + 2 * p - k) / Double(s)).rounded(.down)) + 1
            let expectW = Int((Double(w + 2 * p - k) / Double(s)).rounded(.down)) + 1
            #expect(layer.outputShape == TensorShape(6, expectH, expectW), "h\(h) w\(w) k\(k) s\(s) p\(p)")
            #expect(b.parameters.slot(named: "c.weight")?.shape == [6, 3, k, k])
        }
    }

    @Test("ConvTranspose2d output is (H - 1) s - 2p + k + output_padding per side")
    func convTransposeShapes() {
        for (h, w, k, s, p, op) in [(2, 2, 3, 2, 1, 1), (4, 4, 3, 2, 1, 0), (7, 7, 3, 2, 1, 1), (14, 14, 3, 2, 1, 1), (3, 5, 4, 3, 1, 2), (5, 5, 3, 1, 1, 0)] {
            var b = LayerBuilder()
            let layer = LayerSpec.convTranspose2d(out: 4, kernel: k, stride: s, padding: p, outputPadding: op)
                .make(input: TensorShape(2, h, w), name: "t", builder: &b)
            #expect(layer.outputShape == TensorShape(4, (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op))
            #expect(b.parameters.slot(named: "t.weight")?.shape == [2, 4, k, k])
        }
    }

    @Test("seed 003's ConvVAE on MNIST: 28 -> 14 -> 7 -> 4 -> 2 and back, PyTorch names, BN state apart")
    func seed003Shapes() {
        let arch = SeedArchitectures.convVAE003()
        let model = VAE(arch)
        let convs = model.encoder.layers.filter { $0 is Conv2d }.map(\.outputShape)
        #expect(convs == [TensorShape(32, 14, 14), TensorShape(64, 7, 7), TensorShape(128, 4, 4), TensorShape(256, 2, 2)])
        let ups = model.decoder.layers.filter { $0 is ConvTranspose2d }.map(\.outputShape)
        #expect(ups == [TensorShape(128, 4, 4), TensorShape(64, 7, 7), TensorShape(32, 14, 14), TensorShape(1, 28, 28)])
        #expect(model.heads!.inFeatures == 256 * 2 * 2 + 10)
        #expect(model.layout.slot(named: "encoder.layers.0.weight")?.shape == [32, 1, 3, 3])
        #expect(model.layout.slot(named: "encoder.layers.1.weight")?.shape == [32])
        #expect(model.layout.slot(named: "decoder.layers.0.weight")?.shape == [1024, 32 + 10])
        #expect(model.layout.slot(named: "decoder.layers.2.weight")?.shape == [256, 128, 3, 3])
        #expect(model.layout.slot(named: "encoder.layers.1.running_mean") == nil)
        #expect(model.stateLayout.slot(named: "encoder.layers.1.running_mean")?.shape == [32])
        #expect(model.stateLayout.slot(named: "encoder.layers.1.num_batches_tracked")?.shape == [])
        #expect(model.stateLayout.exported.count == 3 * 7)
        // Conv FLOPs: 2 Cout Cin k k OH OW per conv.
        let conv0 = model.encoder.layers[0]
        #expect(conv0.flopsPerRow == 2 * 32 * 1 * 9 * 14 * 14)
        #expect(model.trainingFlopsPerSample == 3 * model.layers.reduce(0) { $0 + $1.flopsPerRow } - conv0.flopsPerRow)
    }

    @Test("seed 004's CVAE with BatchNorm and dropout: names and widths")
    func seed004Shapes() {
        let model = VAE(SeedArchitectures.cvae004())
        #expect(model.layout.exported.map(\.name) == [
            "encoder.layers.0.weight", "encoder.layers.0.bias", "encoder.layers.2.weight", "encoder.layers.2.bias",
            "encoder.mean.weight", "encoder.mean.bias", "encoder.logvar.weight", "encoder.logvar.bias",
            "decoder.layers.0.weight", "decoder.layers.0.bias", "decoder.layers.2.weight", "decoder.layers.2.bias",
            "decoder.layers.4.weight", "decoder.layers.4.bias",
        ])
        #expect(model.layout.slot(named: "encoder.layers.0.weight")?.shape == [256, 794])
        #expect(model.layout.slot(named: "decoder.layers.0.weight")?.shape == [256, 18])
        #expect(model.stateLayout.exported.map(\.name) == [
            "encoder.layers.2.running_mean", "encoder.layers.2.running_var", "encoder.layers.2.num_batches_tracked",
            "decoder.layers.2.running_mean", "decoder.layers.2.running_var", "decoder.layers.2.num_batches_tracked",
        ])
    }
}
