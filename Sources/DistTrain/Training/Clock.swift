import DistTrainIO
import Logging
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic and wall clocks in seconds.
public enum Clock {
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Seconds since `t`, and moves `t` to now.
    @inline(__always)
    public static func lap(_ t: inout Double) -> Double {
        let n = now()
        defer { t = n }
        return n - t
    }

    public static func wall() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
