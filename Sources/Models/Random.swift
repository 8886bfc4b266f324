/// SplitMix64: a small, fast, seedable generator whose whole state is one UInt64, so it can
/// be checkpointed exactly. Used for initialization and shuffling.
public struct SplitMix64: Sendable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 finalizer: a bijective avalanche of 64 bits.
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func unitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * unitFloat() }

    /// Uniform integer in 0..<n without modulo bias (Lemire's method).
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Fisher-Yates shuffle.
    public mutating func shuffle<T>(_ a: inout [T]) {
        if a.count < 2 { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, below(i + 1))
        }
    }
}

/// Counter-based Gaussian noise: the value for (key, sample, j) is a pure function of those
/// numbers. A sample therefore gets the same reparameterization noise whichever rank or batch
/// slot it lands in, which makes results independent of the world size and resume exact
/// without saving any generator state.
public enum GaussianNoise {
    /// Combines a seed with a stream label and a counter (such as the step) into a key.
    public static func key(seed: UInt64, stream: UInt64, counter: UInt64) -> UInt64 {
        SplitMix64.mix(SplitMix64.mix(seed ^ 0x5EED_0000_0000_0000 &+ stream) &+ counter)
    }

    /// Fills `out[row * dim + j]` with N(0, 1) draws keyed by `ids[row]`.
    public static func fill(_ out: UnsafeMutablePointer<Float>, rows: Int, dim: Int, ids: UnsafePointer<Int32>, key: UInt64) {
        for r in 0..<rows {
            let rowKey = SplitMix64.mix(key &+ UInt64(UInt32(bitPattern: ids[r])) &* 0xD1B5_4A32_D192_ED03)
            var j = 0
            var pair: UInt64 = 0
            while j < dim {
                // Box-Muller: two uniforms from one 64-bit hash give two normals.
                let h = SplitMix64.mix(rowKey &+ pair)
                pair &+= 1
                let u1 = (Float(h >> 40) + 0.5) * 0x1p-24          // (0, 1): log stays finite
                let u2 = Float((h >> 16) & 0xFF_FFFF) * 0x1p-24
                let radius = (-2 * logf(u1)).squareRoot()
                let angle = 2 * Float.pi * u2
                out[r * dim + j] = radius * cosf(angle)
                if j + 1 < dim { out[r * dim + j + 1] = radius * sinf(angle) }
                j += 2
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
