import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// A linear axis with "nice" tick positions (1, 2 or 5 times a power of ten).
public struct PlotAxis: Equatable, Sendable {
    public let low: Double
    public let high: Double
    public let ticks: [Double]
    /// Decimals that tell the ticks apart.
    public let decimals: Int

    /// An axis covering [low, high] with about `target` ticks; ends are rounded out to ticks.
    /// `integer` keeps the tick step at least 1 (epochs).
    public init(covering low: Double, _ high: Double, target: Int = 6, integer: Bool = false) {
        var lo = low.isFinite ? low : 0, hi = high.isFinite ? high : 1
        if hi < lo { swap(&lo, &hi) }
        // Keep the span finite (-1e308...1e308 would overflow to infinity and give NaN ticks).
        lo = max(lo, -0x1p1020); hi = min(hi, 0x1p1020)
        if hi - lo < 1e-12 * max(1, abs(lo)) {  // one value: widen around it
            let pad = max(abs(lo) * 0.05, integer ? 1 : 0.5)
            lo -= pad; hi += pad
        }
        let raw = (hi - lo) / Double(max(target, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let n = raw / magnitude
        var step = (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * magnitude
        if integer { step = max(1, step.rounded()) }
        let first = floor(lo / step + 1e-9), last = ceil(hi / step - 1e-9)
        self.low = first * step
        self.high = last * step
        var t: [Double] = []
        var i = first
        while i <= last + 0.5 { t.append(i * step); i += 1 }
        ticks = t
        decimals = step >= 1 || !step.isFinite ? 0 : min(17, Int(ceil(-log10(step) - 1e-9)))
    }

    /// Position of `v` on a span from `a` (at low) to `b` (at high).
    public func map(_ v: Double, _ a: Double, _ b: Double) -> Double { a + (v - low) / (high - low) * (b - a) }

    public func label(_ v: Double) -> String { PlotText.number(v, decimals: decimals) }
}
