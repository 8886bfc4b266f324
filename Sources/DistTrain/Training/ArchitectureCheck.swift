import Models

/// What would stop a layer-stack architecture from being built, found before building it:
/// the layers' shape rules (those of PyTorch), walked along the stacks, so a bad config gets
/// one line naming the layer instead of a failed precondition inside Models.
public enum ArchitectureCheck {
    /// The first problem, naming the config field of the layer at fault, or nil.
    public static func problem(_ a: VAEArchitecture) -> (field: String, reason: String)? {
        if a.latentKind == .vectorQuantized {
            guard a.encoderLayers != nil && a.decoderLayers != nil else {
                return ("model.latent_kind", "\"vq\" needs explicit `model.encoder` and `model.decoder` stacks (see configs/vq-vae.json)")
            }
            guard a.conditioning == .none else {
                return ("model.conditioning", "must be \"none\" with latent_kind \"vq\": the codes are not conditioned on the label")
            }
        }
        guard a.encoderLayers != nil || a.decoderLayers != nil else { return nil }
        var shape = a.labelJoinsInput ? TensorShape.flat(a.encoderInputWidth) : a.inputShape
        if let p = walk(a.encoderStack, from: &shape, field: "model.encoder") { return p }
        if a.latentKind == .vectorQuantized && shape.channels != a.latent {
            return ("model.encoder", "ends with \(shape); a VQ-VAE's encoder must end with `latent` (\(a.latent)) channels, the code dimension D")
        }
        shape = .flat(a.decoderInputWidth)
        let decoder = a.decoderStack
        if let p = walk(decoder, from: &shape, field: "model.decoder") { return p }
        guard shape.count == a.inputDim else {
            return ("model.decoder", "ends with \(shape) (\(shape.count) values); the images have \(a.inputShape) (\(a.inputDim) values)")
        }
        guard decoder.contains(where: \.hasParameters) else { return ("model.decoder", "needs at least one layer with weights") }
        if let last = decoder.lastIndex(where: { !isView($0) }), isActivation(decoder[last]) {
            return ("model.decoder[\(last)]", "the decoder must end in logits: the loss applies the sigmoid itself, so drop this final activation")
        }
        return nil
    }

    static func isView(_ l: LayerSpec) -> Bool {
        if case .flatten = l { return true }
        if case .reshape = l { return true }
        return false
    }

    static func isActivation(_ l: LayerSpec) -> Bool {
        switch l {
        case .relu, .leakyReLU, .tanh, .sigmoid: return true
        default: return false
        }
    }

    /// Moves `shape` through `stack`; the first layer that cannot take its input, or nil.
    static func walk(_ stack: [LayerSpec], from shape: inout TensorShape, field: String) -> (field: String, reason: String)? {
        for (i, layer) in stack.enumerated() {
            let here = "\(field)[\(i)]"
            switch layer {
            case let .linear(out):
                shape = .flat(out)
            case let .conv2d(out, k, s, p):
                guard shape.height + 2 * p >= k, shape.width + 2 * p >= k else {
                    return (here, "a \(k)x\(k) convolution with padding \(p) does not fit its input \(shape)")
                }
                shape = TensorShape(out, (shape.height + 2 * p - k) / s + 1, (shape.width + 2 * p - k) / s + 1)
            case let .convTranspose2d(out, k, s, p, op):
                guard op < s else { return (here + ".output_padding", "must be smaller than the stride (\(s)), got \(op)") }
                let h = (shape.height - 1) * s - 2 * p + k + op, w = (shape.width - 1) * s - 2 * p + k + op
                guard h >= 1, w >= 1 else { return (here, "gives an empty output from \(shape)") }
                shape = TensorShape(out, h, w)
            case .flatten:
                shape = .flat(shape.count)
            case let .reshape(dims):
                let count = dims.reduce(1, *)
                guard count == shape.count else {
                    return (here + ".shape", "\(dims) holds \(count) values; its input \(shape) has \(shape.count)")
                }
                shape = dims.count == 1 ? .flat(dims[0]) : dims.count == 2 ? TensorShape(dims[0], dims[1], 1) : TensorShape(dims[0], dims[1], dims[2])
            case let .residual(block):
                guard !block.isEmpty else { return (here + ".block", "must hold at least one layer") }
                if let i = block.firstIndex(where: isView) {
                    return ("\(here).block[\(i)]", "a residual block cannot hold flatten or reshape: its output is added to its input")
                }
                var inner = shape
                if let p = walk(block, from: &inner, field: here + ".block") { return p }
                guard inner == shape else {
                    return (here + ".block", "maps \(shape) to \(inner); a residual block must keep its input's shape (its output is added to it)")
                }
            case .batchNorm, .dropout, .relu, .leakyReLU, .tanh, .sigmoid:
                break
            }
            guard shape.count <= 1 << 26 else { return (here, "makes \(shape.count) values per sample, more than 2^26") }
        }
        return nil
    }
}
