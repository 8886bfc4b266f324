import DistTrainIO
/// Whole-buffer checks over the flat buffers, written to vectorize.
public enum Numerics {
    /// True when no element is NaN or infinite: x * 0 is 0 for finite x and NaN otherwise,
    /// so one SIMD sum answers for the whole buffer.
    public static func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) * 0
            i += 8
        }
        var tail: Float = 0
        while i < count { tail += p[i] * 0; i += 1 }
        return (acc.sum() + tail) == 0
    }

    /// Sum of the squares, in float32 over blocks of 1024 and float64 across blocks (a NaN or
    /// infinity anywhere makes it non-finite). The same buffer gives the same bits on every rank.
    public static func sumOfSquares(_ p: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < count {
            let end = min(i + 1024, count)
            var acc = SIMD8<Float>(repeating: 0)
            while i + 8 <= end {
                let x = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                acc += x * x
                i += 8
            }
            var tail: Float = 0
            while i < end { tail += p[i] * p[i]; i += 1 }
            total += Double(acc.sum() + tail)
        }
        return total
    }

    /// PyTorch's clip_grad_norm_: scales by maxNorm / (norm + 1e-6) when that is below 1.
    public static func clip(_ p: UnsafeMutablePointer<Float>, count: Int, norm: Double, maxNorm: Double) {
        let coefficient = maxNorm / (norm + 1e-6)
        guard coefficient < 1 else { return }
        let c = Float(coefficient)
        let v = SIMD8<Float>(repeating: c)
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: x * v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { p[i] *= c; i += 1 }
    }

    /// A 64-bit checksum of the exact bit patterns: equal buffers give equal sums, and any
    /// single changed bit changes it.
    public static func checksum(_ p: UnsafePointer<Float>, count: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        UnsafeRawPointer(p).withMemoryRebound(to: UInt32.self, capacity: count) { u in
            for i in 0..<count {
                h = (h ^ UInt64(u[i])) &* 0x0000_0100_0000_01B3
            }
        }
        return h
    }
}
