import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// `optimizer.schedule`.
public enum LRScheduleKind: String, CaseIterable, Sendable {
    case constant, cosine, linear, step, plateau
}

/// `optimizer.scale_lr`: how the lr grows with the global batch against `reference_batch`.
public enum LRScaling: String, CaseIterable, Sendable {
    case none, linear, sqrt

    /// The factor for a global batch of `batch` against `reference`: 1, b / r, or sqrt(b / r).
    public func factor(batch: Int, reference: Int) -> Double {
        switch self {
        case .none: return 1
        case .linear: return Double(batch) / Double(reference)
        case .sqrt: return (Double(batch) / Double(reference)).squareRoot()
        }
    }
}

/// The learning rate of every step: a pure function of the step and the config, times the
/// reduce-on-plateau factor (the one piece of state, kept in `TrainerState.plateau`).
///
///     peak   = optimizer.lr * scale_lr factor(global batch)
///     warmup : lr(t) = peak * (t + 1) / W                 for t < W   (t: updates already taken)
///     cosine : min + (peak - min) * (1 + cos(pi p)) / 2     p = (t - W) / (T - W), T = total steps
///     linear : min + (peak - min) * (1 - p)
///     step   : peak * gamma ^ floor(t / every)
///     plateau: max(peak * factor, min)
///     constant: peak
public struct LRSchedule: Equatable, Sendable {
    public let kind: LRScheduleKind
    /// The lr after warmup, before any decay (the configured lr, scaled for the batch).
    public let peak: Double
    public let warmup: Int
    /// Steps of the whole run (epochs x steps per epoch, or max_steps when smaller).
    public let total: Int
    public let minLR: Double
    public let stepEvery: Int
    public let gamma: Double

    public init(kind: LRScheduleKind, peak: Double, warmup: Int = 0, total: Int = 0, minLR: Double = 0,
                stepEvery: Int = 0, gamma: Double = 0.1) {
        self.kind = kind
        self.peak = peak
        self.warmup = warmup
        self.total = total
        self.minLR = minLR
        self.stepEvery = stepEvery
        self.gamma = gamma
    }

    /// The schedule of `config` for a run of `stepsPerEpoch` steps per epoch.
    public init(config: TrainConfig, stepsPerEpoch: Int) throws {
        let o = config.optimizer
        var total = config.training.epochs * stepsPerEpoch
        if config.training.maxSteps > 0 { total = min(total, config.training.maxSteps) }
        let warmup = o.warmupSteps > 0 ? o.warmupSteps : Int((o.warmupEpochs * Double(stepsPerEpoch)).rounded())
        let every = o.stepEvery > 0 ? o.stepEvery : o.stepEveryEpochs * stepsPerEpoch
        if o.warmupSteps > 0 && o.warmupEpochs > 0 {
            throw ConfigError.invalidValue(field: "optimizer.warmup_epochs", reason: "and \"optimizer.warmup_steps\" are exclusive: set one")
        }
        if o.stepEvery > 0 && o.stepEveryEpochs > 0 {
            throw ConfigError.invalidValue(field: "optimizer.step_every_epochs", reason: "and \"optimizer.step_every\" are exclusive: set one")
        }
        if o.schedule == .step && every == 0 {
            throw ConfigError.invalidValue(field: "optimizer.schedule", reason: "\"step\" needs \"optimizer.step_every\" or \"optimizer.step_every_epochs\"")
        }
        if o.minLR > o.lr * o.scaleLR.factor(batch: config.training.globalBatch, reference: o.referenceBatch) && o.schedule != .constant && o.schedule != .step {
            throw ConfigError.invalidValue(field: "optimizer.min_lr", reason: "(\(JSON.format(o.minLR))) exceeds the peak lr")
        }
        self.init(kind: o.schedule, peak: o.lr * o.scaleLR.factor(batch: config.training.globalBatch, reference: o.referenceBatch),
                  warmup: warmup, total: total, minLR: o.minLR, stepEvery: every, gamma: o.stepGamma)
    }

    /// The lr of the update that follows `t` updates (t = 0 for the first one).
    @inline(__always)
    public func lr(step t: Int, plateauFactor: Double = 1) -> Double {
        var base: Double
        switch kind {
        case .constant:
            base = peak
        case .cosine, .linear:
            let span = Double(max(total - warmup, 1))
            let p = min(max(Double(t - warmup) / span, 0), 1)
            base = kind == .cosine ? minLR + (peak - minLR) * (1 + cos(Double.pi * p)) / 2 : minLR + (peak - minLR) * (1 - p)
        case .step:
            base = peak * pow(gamma, Double(t / max(stepEvery, 1)))
        case .plateau:
            base = max(peak * plateauFactor, minLR)
        }
        if t < warmup { base *= Double(t + 1) / Double(warmup) }
        return base
    }
}

/// Reduce-on-plateau's state: PyTorch's `ReduceLROnPlateau(mode="min", threshold_mode="rel")`
/// stepped with each finished epoch's test loss. Saved in trainer.json so a resume continues it.
public struct PlateauState: Equatable, Sendable {
    public var best = Double.infinity
    public var badEpochs = 0
    /// Product of the reductions so far (multiplies the peak lr).
    public var factor = 1.0

    public init() {}

    /// One epoch's test loss: an improvement by more than `threshold` (relative) resets the
    /// count; more than `patience` epochs without one multiply the factor by `reduction`.
    public mutating func observe(_ loss: Double, reduction: Double, patience: Int, threshold: Double) {
        if loss < best * (1 - threshold) {
            best = loss
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if badEpochs > patience {
            factor *= reduction
            badEpochs = 0
        }
    }

    public var json: JSON {
        .object([("best", best.isFinite ? .number(best) : .null), ("bad_epochs", .number(Double(badEpochs))),
                 ("factor", .number(factor))])
    }

    /// Reads trainer.json's `lr_plateau` (absent in older files: the fresh state).
    public init(json: JSON?) {
        guard let j = json else { return }
        if case let .number(b)? = j["best"] { best = b }
        if case let .number(b)? = j["bad_epochs"], b >= 0 { badEpochs = Int(b) }
        if case let .number(f)? = j["factor"], f > 0 { factor = f }
    }
}
