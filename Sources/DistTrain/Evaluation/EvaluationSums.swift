import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Sums of the test-set evaluation over some records (add them across ranks, then divide).
public struct EvaluationSums: Equatable, Sendable {
    /// Records evaluated.
    public var count = 0
    /// Sum over records of the BCE summed over pixels (= -log p(x|z) of a Bernoulli decoder).
    public var bce = 0.0
    /// Sum over records of KL(q(z|x) || N(0, I)).
    public var kl = 0.0
    /// Sum over records of the importance-weighted estimate of -log p(x) (0 when no samples);
    /// for a categorical latent, of the exact -log p(x) (see `CategoricalEvaluation.run`).
    public var nllIW = 0.0

    public init() {}

    /// As an array for `Communicator.sum`, and back.
    public var values: [Double] { [Double(count), bce, kl, nllIW] }
    public init(values v: [Double]) { count = Int(v[0].rounded()); bce = v[1]; kl = v[2]; nllIW = v[3] }
}
