import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// Small text helpers shared by the SVG and raster plots.
public enum PlotText {
    /// `v` rounded to `decimals` places, without exponent notation ("-0" prints as "0").
    public static func number(_ v: Double, decimals: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        var scale = 1.0
        for _ in 0..<min(max(decimals, 0), 17) { scale *= 10 }
        let units = (abs(v) * scale).rounded()
        // Beyond 2^53 units the digits are not exact anyway (and Int64 would trap past 2^63):
        // any finite value still prints, in Swift's shortest exponent form.
        guard units < 0x1p53 else { return "\(v)" }
        let whole = (units / scale).rounded(.down)
        let frac = Int((units - whole * scale).rounded())
        var s = String(Int64(whole))
        if decimals > 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: max(0, decimals - f.count)) + f
        }
        return (v < 0 && units > 0 ? "-" : "") + s
    }

    /// Text escaped for SVG element content and attribute values.
    public static func xml(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A coordinate with one decimal (SVG output stays compact).
    static func coord(_ v: Double) -> String { number(v, decimals: 1) }
}

// MARK: - Learning curves
