/// Where a conv layer's weight and bias sit in the flat parameter (and gradient) buffer, and
/// what Conv2d and ConvTranspose2d do alike with them: reserve and export them under PyTorch's
/// names, initialize them uniformly (weight first, then bias, one RNG stream), and zero their
/// gradients before a non-accumulating backward.
///
/// Dimensions: the weight is any PyTorch shape (Conv2d [Cout, Cin, k, k], ConvTranspose2d
/// [Cin, Cout, k, k]), stored row-major; the bias is [Cout].
struct ConvParameters {
    /// weight [weightShape], row-major, at `weightOffset` of the flat buffers.
    let weightOffset: Int
    let weightCount: Int
    /// bias [biasCount] at `biasOffset`.
    let biasOffset: Int
    let biasCount: Int

    init(name: String, weightShape: [Int], biasCount: Int, builder: inout LayerBuilder) {
        weightCount = weightShape.reduce(1, *)
        self.biasCount = biasCount
        weightOffset = builder.parameters.reserve(weightCount)
        biasOffset = builder.parameters.reserve(biasCount)
        builder.parameters.export(name + ".weight", shape: weightShape, offset: weightOffset)
        builder.parameters.export(name + ".bias", shape: [biasCount], offset: biasOffset)
    }

    /// Weight then bias uniform in [-bound, bound] (PyTorch's kaiming_uniform(a = sqrt(5)) and
    /// bias rule both give bound 1 / sqrt(fan_in)).
    func initialize(_ params: UnsafeMutablePointer<Float>, bound: Float, rng: inout SplitMix64) {
        for i in 0..<weightCount { params[weightOffset + i] = rng.uniform(-bound, bound) }
        for i in 0..<biasCount { params[biasOffset + i] = rng.uniform(-bound, bound) }
    }

    /// Zeroes the weight and bias gradients unless the backward pass accumulates into them.
    func prepareGradients(_ c: LayerContext) -> UnsafeMutablePointer<Float> {
        let grads = c.grads!
        if !c.accumulate {
            (grads + weightOffset).update(repeating: 0, count: weightCount)
            (grads + biasOffset).update(repeating: 0, count: biasCount)
        }
        return grads
    }
}
