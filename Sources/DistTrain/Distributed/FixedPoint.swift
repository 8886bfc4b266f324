/// Exact, order-free sums of floats: 64-bit fixed point with a power-of-two scale per tensor.
///
/// Floating-point addition is not associative, so a sum over ranks that MPI adds in an order
/// of its choosing (and that differs with the number of ranks) is not reproducible. Integers
/// add exactly in any order. Each value v of a tensor becomes round(v * 2^shift), where
/// `shift` comes from the largest magnitude of the tensor over every piece (an order-free
/// max-reduction) and leaves room for up to 4096 such values without overflow; the integers are
/// summed (in any grouping, on any rank) and the total scaled back by 2^-shift. The result is
/// a function of the values alone. Resolution is 2^-49 of the largest value (far below
/// float32's 2^-24 relative precision), so entries within 2^25 of the largest lose nothing a
/// float32 sum would keep; smaller ones are rounded to that absolute step.
public enum FixedPoint {
    /// The largest magnitude as an order-preserving integer: the bits of |v| (NaN above +inf).
    @inline(__always)
    public static func magnitudeBits(_ v: Float) -> Int64 { Int64(v.bitPattern & 0x7FFF_FFFF) }

    /// Bits above this hold an infinity or a NaN.
    public static let largestFiniteBits = Int64(Float.greatestFiniteMagnitude.bitPattern)

    /// Most terms one sum may have (each term stays below 2^50, the sum below 2^62).
    public static let maxTerms = 4096

    /// The scale exponent for a tensor whose largest magnitude has `bits` (from
    /// `magnitudeBits`): every value times 2^shift is below 2^50 in magnitude (the largest
    /// at least 2^49), so up to `maxTerms` of them sum without overflow.
    public static func shift(maxBits bits: Int64) -> Int {
        guard bits > 0 else { return 0 }
        let e = Int(Float(bitPattern: UInt32(bits)).exponent)  // max < 2^(e+1)
        return 49 - e
    }

    /// 1.5 * 2^52: adding it to a double y with |y| < 2^51 leaves round(y) (ties to even) in
    /// the low bits of the result, a rounding to integer that vectorizes (no conversion
    /// instruction).
    static let magic = 6_755_399_441_055_744.0
    static let magicBits = Int64(bitPattern: magic.bitPattern)

    /// round(v * scale), ties to even, for |v * scale| < 2^51 (scale a power of two).
    @inline(__always)
    public static func quantize(_ v: Float, scale: Double) -> Int64 {
        Int64(bitPattern: (Double(v) * scale + magic).bitPattern) &- magicBits
    }

    /// 2^k as a Double (k in Double's normal range).
    @inline(__always)
    public static func power(_ k: Int) -> Double { Double(sign: .plus, exponent: k, significand: 1) }

    /// The largest `magnitudeBits` of `count` floats.
    @inline(__always)
    public static func largestMagnitude(_ values: UnsafePointer<Float>, count: Int) -> Int64 {
        let raw = UnsafeRawPointer(values)
        var m8 = SIMD8<UInt32>(repeating: 0)
        let mask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        var i = 0
        while i + 8 <= count {
            m8 = pointwiseMax(m8, raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<UInt32>.self) & mask)
            i += 8
        }
        var m = m8.max()
        while i < count {
            m = max(m, values[i].bitPattern & 0x7FFF_FFFF)
            i += 1
        }
        return Int64(m)
    }

    /// Adds `count` quantized values of `values` (at 2^shift) into `sums`.
    @inline(__always)
    public static func accumulate(_ values: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Int64>, count: Int, shift: Int) {
        let scale = power(shift)
        let s8 = SIMD8<Double>(repeating: scale), m8 = SIMD8<Double>(repeating: magic)
        let b8 = SIMD8<Int64>(repeating: magicBits)
        let src = UnsafeRawPointer(values), dst = UnsafeMutableRawPointer(sums)
        var i = 0
        while i + 8 <= count {
            let f = src.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            let y = SIMD8<Double>(f) * s8 + m8
            let q = unsafeBitCast(y, to: SIMD8<Int64>.self) &- b8
            let old = dst.loadUnaligned(fromByteOffset: 8 * i, as: SIMD8<Int64>.self)
            dst.storeBytes(of: old &+ q, toByteOffset: 8 * i, as: SIMD8<Int64>.self)
            i += 8
        }
        while i < count {
            sums[i] &+= quantize(values[i], scale: scale)
            i += 1
        }
    }

    /// The floats of `count` summed integers (at 2^shift).
    @inline(__always)
    public static func dequantize(_ sums: UnsafePointer<Int64>, into out: UnsafeMutablePointer<Float>, count: Int, shift: Int) {
        let scale = power(-shift)
        for i in 0..<count { out[i] = Float(Double(sums[i]) * scale) }
    }

    /// The exact sum of `terms` (arrays of equal length) through fixed point, for tests and
    /// small sums: the same bits for any order of the terms.
    public static func sum(_ terms: [[Float]]) -> [Float] {
        guard let n = terms.first?.count else { return [] }
        precondition(terms.count <= maxTerms)
        let bits = terms.map { t in t.withUnsafeBufferPointer { largestMagnitude($0.baseAddress!, count: n) } }.max() ?? 0
        var out = [Float](repeating: .nan, count: n)
        guard bits <= largestFiniteBits else { return out }
        let s = shift(maxBits: bits)
        var sums = [Int64](repeating: 0, count: n)
        for t in terms {
            t.withUnsafeBufferPointer { src in sums.withUnsafeMutableBufferPointer { accumulate(src.baseAddress!, into: $0.baseAddress!, count: n, shift: s) } }
        }
        sums.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dequantize(src.baseAddress!, into: $0.baseAddress!, count: n, shift: s) } }
        return out
    }
}
