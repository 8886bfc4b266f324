import DistTrainIO

/// Per-epoch scalars in RUN/tb, against the global step.
final class TensorBoardScalars: EpochOutput {
    let events: TensorBoardWriter

    init(events: TensorBoardWriter) { self.events = events }

    func write(_ e: FinishedEpoch) throws {
        let r = e.report
        let train = r.train.means(beta: e.klWeight), test = r.test.means(beta: e.klWeight)
        try events.scalar("loss/train", train.loss, step: r.step)
        try events.scalar("loss/test", test.loss, step: r.step)
        try events.scalar("loss/train_bce", train.bce, step: r.step)
        try events.scalar("loss/train_kl", train.kl, step: r.step)
        if let c = e.codebook {
            try events.scalar("codebook/perplexity", c.perplexity, step: r.step)
            try events.scalar("codebook/codes_used", Double(c.used), step: r.step)
        }
        try events.scalar("throughput/samples_per_s", r.samplesPerSecond, step: r.step)
        try events.scalar("optimizer/lr", e.lr, step: r.step)
        if let g = e.gradNormMean { try events.scalar("optimizer/grad_norm_mean", g, step: r.step) }
        if let g = e.gradNormMax { try events.scalar("optimizer/grad_norm_max", g, step: r.step) }
        if let s = e.straggler, e.rankStepMs.count > 1 { try events.scalar("ranks/straggler_lag_ms", s.lagMs, step: r.step) }
        try events.flush()
    }
}
