import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// Identifies an experiment: a hash of the effective config and of the data files' bytes.
/// Ranks compare fingerprints at start so that a rank with another config or data stops the job.
public enum Fingerprint {
    /// FNV-1a over bytes, as 16 hex digits.
    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> String {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    public static func hash(_ text: String) -> String { hash(Array(text.utf8)) }

    /// `hash` of a file's bytes, streamed in 1 MiB chunks (constant memory however large the
    /// file); nil when it cannot be read. Callers check that it is a regular file first: a
    /// device such as /dev/zero never ends.
    public static func hashFile(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            chunk.withUnsafeBufferPointer { b in
                for i in 0..<n { h = (h ^ UInt64(b[i])) &* 0x0000_0100_0000_01B3 }
            }
            if n < chunk.count { if ferror(f) != 0 { return nil }; break }
        }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// "config:<hash> data:<hash>". Output-only settings and data paths are left out of the
    /// config part (the data part hashes the files' contents, wherever they live).
    /// An unreadable data file hashes as "missing"; loading it reports the real error.
    public static func of(config: TrainConfig) throws -> String {
        var experiment = config
        experiment.output = TrainConfig.Output()
        experiment.data = TrainConfig.Data()
        var data: [UInt8] = []
        for path in [config.data.trainImages, config.data.trainLabels, config.data.testImages, config.data.testLabels] {
            let digest = hashFile(path) ?? "missing"
            data.append(contentsOf: Array(digest.utf8))
        }
        return "config:" + hash(experiment.json.serialized) + " data:" + hash(data)
    }
}
