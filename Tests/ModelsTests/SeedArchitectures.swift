@testable import Models

/// The seed recipes the stacks must express (configs come later), at full size and shrunk.
enum SeedArchitectures {
    /// Seed 003's ConvVAE adapted to MNIST 1x28x28: conv k3 s2 p1 + BN2d + LeakyReLU(0.2) x 4,
    /// latent heads on the flattened 256x2x2 (+ label), decoder Linear -> 256x2x2 -> ConvT x 4
    /// (output paddings 1, 0, 1, 1 give 4, 7, 14, 28), sigmoid + MSE in the loss.
    static func convVAE003(channels c: [Int] = [32, 64, 128, 256], latent: Int = 32, classes: Int = 10,
                           side: Int = 28, conditioning: Conditioning = .both,
                           reconstruction: Reconstruction = .mse) -> VAEArchitecture {
        var encoder: [LayerSpec] = []
        for ch in c { encoder += [.conv2d(out: ch, kernel: 3, stride: 2, padding: 1), .batchNorm, .leakyReLU(slope: 0.2)] }
        encoder.append(.flatten)
        var s = side
        var sides: [Int] = [side]
        for _ in c { s = (s + 2 - 3) / 2 + 1; sides.append(s) }
        var decoder: [LayerSpec] = [.linear(out: c.last! * s * s), .reshape([c.last!, s, s])]
        let outs = Array(c.reversed().dropFirst()) + [1]
        for (i, out) in outs.enumerated() {
            let target = sides[c.count - 1 - i], from = sides[c.count - i]
            let op = target - (2 * from - 1)
            decoder.append(.convTranspose2d(out: out, kernel: 3, stride: 2, padding: 1, outputPadding: op))
            if i < outs.count - 1 { decoder += [.batchNorm, .leakyReLU(slope: 0.2)] }
        }
        return VAEArchitecture(inputShape: TensorShape(1, side, side), classes: classes, encoder: encoder, decoder: decoder,
                               latent: latent, conditioning: conditioning, reconstruction: reconstruction)
    }

    /// Seed 004's CVAE: [x | y] -> 256 ReLU -> BN1d -> Dropout(0.3) -> latent 8;
    /// [z | y] -> 256 LeakyReLU -> BN1d -> Dropout(0.3) -> 784 logits (BCE).
    static func cvae004(inputDim: Int = 784, hidden: Int = 256, latent: Int = 8, classes: Int = 10, p: Float = 0.3,
                        reconstruction: Reconstruction = .bce) -> VAEArchitecture {
        VAEArchitecture(inputShape: .flat(inputDim), classes: classes,
                        encoder: [.linear(out: hidden), .relu, .batchNorm, .dropout(p: p)],
                        decoder: [.linear(out: hidden), .leakyReLU(slope: 0.2), .batchNorm, .dropout(p: p), .linear(out: inputDim)],
                        latent: latent, conditioning: .both, reconstruction: reconstruction)
    }

    /// Seed 001's VQ-VAE adapted to MNIST: two strided 4x4 convolutions, ReLU, residual 3x3,
    /// ReLU, residual 1x1, a 1x1 projection to D; the decoder mirrors it with transposed
    /// convolutions. `side` must be a multiple of 4 (the latent grid is side / 4 square).
    static func vqVAE001(width w: Int = 32, dimension d: Int = 16, codes: Int = 512, side: Int = 28,
                         commitment: Float = 0.25, reconstruction: Reconstruction = .bce) -> VAEArchitecture {
        let grid = side / 4
        var a = VAEArchitecture(
            inputShape: TensorShape(1, side, side), classes: 10,
            encoder: [.conv2d(out: w, kernel: 4, stride: 2, padding: 1), .conv2d(out: w, kernel: 4, stride: 2, padding: 1), .relu,
                      .residual([.conv2d(out: w, kernel: 3, stride: 1, padding: 1)]), .relu,
                      .residual([.conv2d(out: w, kernel: 1)]), .conv2d(out: d, kernel: 1)],
            decoder: [.reshape([d, grid, grid]), .conv2d(out: w, kernel: 1),
                      .residual([.conv2d(out: w, kernel: 3, stride: 1, padding: 1)]), .relu,
                      .residual([.conv2d(out: w, kernel: 1)]), .relu,
                      .convTranspose2d(out: w, kernel: 4, stride: 2, padding: 1), .convTranspose2d(out: 1, kernel: 4, stride: 2, padding: 1)],
            latent: d, conditioning: .none, latentKind: .vectorQuantized, reconstruction: reconstruction)
        a.codebookSize = codes
        a.commitment = commitment
        return a
    }
}
