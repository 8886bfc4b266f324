import DistTrainIO

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

    /// "config:<hash> data:<hash>". Output-only settings and data paths are left out of the
    /// config part (the data part hashes the files' contents, wherever they live).
    /// An unreadable data file hashes as "missing"; loading it reports the real error.
    public static func of(config: TrainConfig) throws -> String {
        var experiment = config
        experiment.output = TrainConfig.Output()
        experiment.data = TrainConfig.Data()
        var data: [UInt8] = []
        for path in [config.data.trainImages, config.data.trainLabels, config.data.testImages, config.data.testLabels] {
            let digest = (try? FileBytes.read(path)).map { hash($0) } ?? "missing"
            data.append(contentsOf: Array(digest.utf8))
        }
        return "config:" + hash(experiment.json.serialized) + " data:" + hash(data)
    }
}
