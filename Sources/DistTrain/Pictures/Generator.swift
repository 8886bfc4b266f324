import DistTrainIO
import Models

/// Runs the decoder outside the training loop (grids, generation commands).
public struct Generator {
    public let model: VAE
    public let params: UnsafePointer<Float>
    /// [stateCount] BatchNorm running statistics (eval mode), nil for models without state.
    public let state: UnsafeMutablePointer<Float>?

    public init(model: VAE, params: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>? = nil) {
        self.model = model
        self.params = params
        self.state = state
    }

    /// Pixel probabilities for each (z, label) row: `z` holds rows * latentWidth floats.
    public func decode(z: [Float], labels: [Int]) -> [Float] {
        let a = model.architecture
        let rows = labels.count
        let width = a.latentWidth
        precondition(z.count == rows * width)
        let ws = VAEWorkspace(model: model, capacity: max(rows, 1))
        for r in 0..<rows {
            for j in 0..<width { ws.decoderInput.base[r * a.decoderInputWidth + j] = z[r * width + j] }
            ws.setLabel(row: r, label: labels[r], architecture: a)
        }
        model.decode(params, ws, rows: rows, state: state)
        var out = [Float](repeating: 0, count: rows * a.inputDim)
        out.withUnsafeMutableBufferPointer { BinaryCrossEntropy.sigmoid(ws.logits.base, $0.baseAddress!, count: rows * a.inputDim) }
        return out
    }

    /// The training-progress grid: row k is label k, column c decodes the c-th of `cols` fixed
    /// latent draws, so each column shows one style across all labels. For a categorical
    /// latent the "draws" are the categories themselves: column c decodes the one-hot category
    /// c mod K (no noise, `seed` unused).
    public func labelGrid(cols: Int, seed: UInt64) -> [Float] {
        let a = model.architecture
        let noise = FloatBuffer(count: cols * a.latent)
        switch a.latentKind {
        case .gaussian:
            var ids = (0..<cols).map { Int32($0) }
            ids.withUnsafeMutableBufferPointer {
                GaussianNoise.fill(noise.base, rows: cols, dim: a.latent, ids: $0.baseAddress!,
                                   key: GaussianNoise.key(seed: seed, stream: NoiseStream.grid, counter: 0))
            }
        case .categorical:
            for c in 0..<cols { noise.base[c * a.latent + c % a.latent] = 1 }
        case .vectorQuantized:
            preconditionFailure("a VQ-VAE has no prior to draw a generation grid from")
        }
        var z: [Float] = []
        var labels: [Int] = []
        for label in 0..<a.classes {
            for c in 0..<cols {
                z.append(contentsOf: noise.slice(c * a.latent, a.latent))
                labels.append(label)
            }
        }
        return decode(z: z, labels: labels)
    }
}
