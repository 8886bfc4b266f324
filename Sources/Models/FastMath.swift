/// Polynomial exp and log1p on 8-lane SIMD vectors.
///
/// libm's expf/logf are opaque calls that stop loops from vectorizing; the sigmoid + BCE pass
/// over a batch of 784-pixel logits is the largest elementwise cost of a step, so it uses these.
/// Relative error is about 2e-7, below the rounding of the float32 sums they feed.
public enum FastMath {
    public typealias V = SIMD8<Float>

    /// e^x for x <= 0 (inputs below -87 return about 1.6e-38; the result never underflows to a denormal).
    @inline(__always)
    public static func expNonPositive(_ x: V) -> V {
        let xc = x.replacing(with: -87, where: x .< -87)
        let t = xc * 1.442_695_04 // x / ln 2
        let magic = V(repeating: 12_582_912) // 1.5 * 2^23: adding it rounds to an integer
        let shifted = t + magic
        let n = shifted - magic
        // e^x = 2^n e^r with |r| <= ln2 / 2; ln 2 split in two (Cody-Waite) so that r keeps
        // full precision even when n is large.
        let r = (xc - n * 0.693_145_751_953_125) - n * 1.428_606_820_309_417_2e-6
        var p = V(repeating: 1.0 / 5040)
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n from the integer sitting in the low mantissa bits of `shifted`.
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let twoN = unsafeBitCast((ni &+ 127) &<< 23, to: V.self)
        return p * twoN
    }

    /// log(1 + e) for e in [0, 1], via 2 atanh(e / (2 + e)).
    @inline(__always)
    public static func log1pUnit(_ e: V) -> V {
        let s = e / (e + 2)
        let s2 = s * s
        var p = V(repeating: 1.0 / 11)
        p = p * s2 + 1.0 / 9
        p = p * s2 + 1.0 / 7
        p = p * s2 + 1.0 / 5
        p = p * s2 + 1.0 / 3
        p = p * s2 + 1
        return 2 * s * p
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
}
