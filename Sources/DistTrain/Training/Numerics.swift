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
