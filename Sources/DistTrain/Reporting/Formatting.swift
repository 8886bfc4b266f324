/// `n` left-padded with `fill` to `width` characters (epoch-007.png, aligned console columns).
func pad(_ n: Int, _ width: Int, _ fill: Character = "0") -> String {
    let s = String(n)
    return String(repeating: fill, count: max(0, width - s.count)) + s
}

/// `x` with a fixed number of decimals, without Foundation's String(format:).
func fmt(_ x: Double, _ decimals: Int = 3) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<min(max(decimals, 0), 17) { scale *= 10 }
    let v = (abs(x) * scale).rounded()
    guard v < 0x1p53 else { return "\(x)" }  // huge but finite (a diverged loss): no Int trap
    let whole = Int(v / scale)
    let frac = Int(v - Double(whole) * scale)
    let f = String(frac)
    if decimals <= 0 { return (x < 0 && v > 0 ? "-" : "") + "\(whole)" }
    return (x < 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: max(0, decimals - f.count)) + f
}
