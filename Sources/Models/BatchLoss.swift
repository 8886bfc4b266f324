/// Sums of a batch's loss terms (float64, so epoch totals do not drift).
public struct BatchLoss: Equatable, Sendable {
    /// Sum over rows of the per-sample reconstruction BCE.
    public var bce: Double = 0
    /// Sum over rows of the per-sample KL(q(z|x) || N(0, I)) (unweighted by beta).
    public var kl: Double = 0
    /// Number of samples summed.
    public var rows: Int = 0

    public init(bce: Double = 0, kl: Double = 0, rows: Int = 0) {
        self.bce = bce; self.kl = kl; self.rows = rows
    }

    /// The objective the trainer minimizes, summed: bce + beta * kl.
    public func total(beta: Double) -> Double { bce + beta * kl }

    /// Per-sample means of the objective and its two terms (zero rows count as one, so an
    /// empty sum gives zeros rather than NaN).
    public func means(beta: Double) -> (loss: Double, bce: Double, kl: Double) {
        let n = Double(max(rows, 1))
        return (total(beta: beta) / n, bce / n, kl / n)
    }

    public static func += (a: inout BatchLoss, b: BatchLoss) {
        a.bce += b.bce; a.kl += b.kl; a.rows += b.rows
    }
}
