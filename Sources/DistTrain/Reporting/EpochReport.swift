import DistTrainIO
import Logging
import Models
#if canImport(Glibc)
import Glibc
#endif

/// One epoch's summary as reported in metrics.jsonl.
public struct EpochReport: Sendable {
    public var epoch: Int
    public var step: Int
    public var train: BatchLoss
    public var test: BatchLoss
    public var samplesPerSecond: Double
    public var seconds: Double
    /// Where the epoch's time went (rank 0's clock).
    public var times: PhaseTimes
}
