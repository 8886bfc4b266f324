import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// How many OpenBLAS threads a rank should run.
public enum ThreadPlan {
    /// `requested` if positive; otherwise the CPUs this process may run on divided by the ranks
    /// on this host. A rank pinned to one core by mpirun gets one thread, so ranks never fight.
    public static func threads(requested: Int, ranksOnHost: Int) -> Int {
        if requested > 0 { return requested }
        let allowed = allowedCPUs()
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // A rank bound to a subset of cores uses those; an unbound rank shares the host.
        if allowed < online { return max(1, min(allowed, online / max(ranksOnHost, 1))) }
        return max(1, online / max(ranksOnHost, 1))
    }

    /// Whether `threads` threads per rank have cores to themselves: no more than the plan above
    /// gives a rank that asks for none (its share of the CPUs it may run on).
    public static func fitsCores(threads: Int, ranksOnHost: Int) -> Bool {
        threads <= self.threads(requested: 0, ranksOnHost: ranksOnHost)
    }

    /// CPUs in this process's affinity mask, from the "Cpus_allowed" hex mask in /proc/self/status.
    public static func allowedCPUs() -> Int {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard let status = try? FileBytes.readString("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return online }
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
        return count > 0 ? count : online
    }
}
