import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Noise streams of the analysis tools, disjoint from training's (`NoiseStream`, 1-3).
public enum AnalysisNoise {
    /// z of `generate`.
    public static let generate: UInt64 = 16
    /// Reparameterization noise of the sampled ELBO in `eval`.
    public static let evalELBO: UInt64 = 17
    /// Importance samples of `eval`.
    public static let importance: UInt64 = 18
}

// MARK: - Loading
