import DistTrainIO
import Logging
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Run-time switches that are not part of the experiment (the config is).
public struct TrainOptions: Sendable {
    /// Continue from the run directory's latest checkpoint.
    public var resume = false
    /// Continue from this checkpoint directory instead.
    public var resumeFrom: String?
    /// Debug: poison one rank's local gradient with NaN at a global step: (rank, step).
    public var poisonGradient: (rank: Int, step: Int)?
    /// Print per-epoch lines on stdout (rank 0).
    public var printEpochs = true
    /// Start from these weights (a safetensors file in disttrain's layout, e.g. written by
    /// PyTorch) instead of a fresh initialization. Optimizer state starts fresh.
    public var initFrom: String?
    /// Write TensorBoard event files to RUN/tb (rank 0).
    public var tensorboard = true
    /// Show a live progress line when stdout is a terminal (rank 0).
    public var liveProgress = true
    /// Write a Chrome trace-event JSON of the traced steps here (rank 0 gathers every rank's).
    public var tracePath: String?
    /// Global steps to trace (1-based, inclusive); nil with a path: every step.
    public var traceSteps: ClosedRange<Int>?

    public init() {}
}
