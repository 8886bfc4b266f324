import DistTrainIO
import Models

/// `data.binarize`: whether the [0, 1] pixel intensities are used as they are or replaced by
/// Bernoulli draws with p = intensity (binarized MNIST, as in Burda et al. 2015 and most
/// likelihood results on MNIST, which need a Bernoulli decoder on truly binary data).
///
/// - none: intensities as they are (pixels / 255), the seed recipe.
/// - dynamic: every training image is re-drawn every epoch (a fresh binarization each time it
///   is used), which acts as a regularizer.
/// - static: the training set is drawn once (the draws of epoch 0) and kept.
///
/// Either binarizing mode evaluates on one fixed binarization of the test set (see
/// `BernoulliPixels.testKey`), the same for every model and seed, so test NLLs compare.
public enum Binarization: String, CaseIterable, Sendable {
    case none
    case dynamic
    case `static`
}

extension Binarization {
    /// The `data.binarize` a checkpoint was trained with, read from its model.safetensors
    /// metadata (`training_config`); none when absent (checkpoints from before the field).
    public static func ofCheckpoint(_ metadata: [String: String]) -> Binarization {
        guard let text = metadata["training_config"], let json = try? JSON.parse(text),
              case let .string(s)? = json["data"]?["binarize"], let mode = Binarization(rawValue: s) else { return .none }
        return mode
    }
}
