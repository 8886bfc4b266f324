import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// A request the checkpoint or the data cannot satisfy.
public enum AnalysisError: Error, CustomStringConvertible, Equatable {
    /// The manifold needs a 2-dimensional latent space.
    case latentNotTwo(path: String, latent: Int)
    /// The decoder does not see the label, so a label cannot be chosen.
    case unconditional(path: String, what: String)
    /// The request needs a Gaussian latent; the model's is categorical with `categories`
    /// categories. `path` names the checkpoint when known.
    case needsGaussianLatent(path: String?, what: String, categories: Int)
    /// The request needs a continuous latent (or a prior over it); the model is a VQ-VAE with
    /// a codebook of `codes` codes and no prior over them.
    case vectorQuantized(path: String?, what: String, codes: Int)
    /// A category of a categorical latent outside 0..<categories.
    case categoryOutOfRange(category: Int, categories: Int)
    case labelOutOfRange(label: Int, classes: Int)
    case indexOutOfRange(what: String, index: Int, count: Int, path: String)
    case tooFewWithLabel(label: Int, found: Int, wanted: Int, path: String)
    case countTooLarge(what: String, count: Int, available: Int, path: String)
    case imageSize(path: String, pixels: Int, modelPixels: Int)
    /// A run directory without generation grids to animate.
    case noFrames(path: String)

    public var description: String {
        switch self {
        case let .noFrames(path):
            return "\(path): no generation grids (epoch-NNN.png) to animate: is this a run directory, and was output.grid_every above 0?"
        case let .latentNotTwo(path, latent):
            return "checkpoint \(path): a latent manifold needs a model with a 2-dimensional latent space; this one has \(latent) dimensions (train one with model.latent 2, e.g. configs/cvae-2d.json)"
        case let .unconditional(path, what):
            return "checkpoint \(path): \(what) needs a model whose decoder sees the label (conditioning \"both\" or \"decoder\"); this one is unconditional"
        case let .needsGaussianLatent(path, what, categories):
            return "\(path.map { "checkpoint \($0)" } ?? "the model"): \(what) needs a Gaussian latent; this model's latent is categorical (Gumbel-softmax over \(categories) categories)"
        case let .vectorQuantized(path, what, codes):
            return "\(path.map { "checkpoint \($0)" } ?? "the model"): \(what) needs a Gaussian latent and its prior; this model is a VQ-VAE (a codebook of \(codes) codes, no prior over them): use reconstruct or eval"
        case let .categoryOutOfRange(category, categories):
            return "category \(category) is out of range: the model's categorical latent has \(categories) categories (0...\(categories - 1))"
        case let .labelOutOfRange(label, classes):
            return "label \(label) is out of range: the model has \(classes) classes (0...\(classes - 1))"
        case let .indexOutOfRange(what, index, count, path):
            return "\(what) \(index) is out of range: \(path) holds \(count) images (0...\(count - 1))"
        case let .tooFewWithLabel(label, found, wanted, path):
            return "\(path) holds only \(found) images of label \(label), \(wanted) were asked for"
        case let .countTooLarge(what, count, available, path):
            return "\(what) \(count) exceeds the \(available) images of \(path)"
        case let .imageSize(path, pixels, modelPixels):
            return "\(path) has images of \(pixels) pixels, the model was trained on \(modelPixels)"
        }
    }
}
