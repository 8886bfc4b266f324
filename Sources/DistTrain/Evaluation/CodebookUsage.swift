/// How a VQ-VAE used its codebook over some assignments (an epoch's training steps, or a test
/// set): from the count of positions that chose each code, summed over every rank first.
///
/// perplexity = exp(-sum_k p_k log p_k), p_k = count_k / total: K when every code is chosen
/// equally often, 1 when one code takes everything. `used` counts codes chosen at least once.
public struct CodebookUsage: Equatable, Sendable {
    public var perplexity: Double
    public var used: Int
    /// K, the codebook's size.
    public var size: Int

    public init(perplexity: Double, used: Int, size: Int) {
        self.perplexity = perplexity; self.used = used; self.size = size
    }

    /// From per-code counts (already summed across ranks). No assignments: perplexity 0.
    public init(counts: [Double]) {
        let total = counts.reduce(0, +)
        var entropy = 0.0
        var used = 0
        for c in counts where c > 0 {
            used += 1
            let p = c / total
            entropy -= p * log(p)
        }
        self.init(perplexity: total > 0 ? exp(entropy) : 0, used: used, size: counts.count)
    }
}

#if canImport(Glibc)
import Glibc
#endif
