import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// The standard normal distribution's CDF and its inverse, in float64.
public enum NormalQuantile {
    /// Phi(x) = P(Z <= x) = erfc(-x / sqrt 2) / 2 (accurate in the lower tail too).
    public static func cdf(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// The inverse CDF (the "ppf"): the x with Phi(x) = p, for p in (0, 1); -inf at 0, +inf at 1,
    /// NaN outside [0, 1]. A rational starting guess in t = sqrt(-2 log p) (absolute error
    /// below 5e-4), then Halley steps on Phi(x) - p with erfc until the step is below 1e-15:
    /// accurate to about 1e-14 over the whole range.
    public static func ppf(_ p: Double) -> Double {
        guard p >= 0, p <= 1 else { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        // Work in the lower half; 1 - p is exact for p >= 0.5.
        if p > 0.5 { return -ppf(1 - p) }
        if p == 0.5 { return 0 }
        let t = (-2 * log(p)).squareRoot()
        var x = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1 + t * (1.432788 + t * (0.189269 + t * 0.001308))))
        let sqrt2pi = (2 * Double.pi).squareRoot()
        for _ in 0..<8 {
            // Halley: u = (Phi(x) - p) / phi(x); x -= u / (1 + x u / 2).
            let u = (cdf(x) - p) * sqrt2pi * exp(0.5 * x * x)
            let step = u / (1 + 0.5 * x * u)
            x -= step
            if abs(step) <= 1e-15 * max(1, abs(x)) { break }
        }
        return x
    }

    /// ppf of `n` evenly spaced probabilities from `low` to `high` (numpy's linspace, ends included).
    public static func grid(n: Int, low: Double, high: Double) -> [Double] {
        if n <= 0 { return [] }
        if n == 1 { return [ppf(low)] }
        return (0..<n).map { ppf(low + (high - low) * Double($0) / Double(n - 1)) }
    }
}
