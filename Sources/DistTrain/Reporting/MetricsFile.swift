import DistTrainIO

/// RUN/metrics.jsonl (one JSON object per epoch, for scripts and the plots) and RUN/curves.svg
/// redrawn from it.
final class MetricsFile: EpochOutput {
    let run: RunDirectory

    init(run: RunDirectory) { self.run = run }

    func write(_ epoch: FinishedEpoch) throws {
        try run.appendMetrics(MetricsFile.line(epoch))
        try LearningCurves.write(metricsPath: run.metrics, to: run.curves)
    }

    /// Gradient norms, optimizer memory, and the straggler summary (every rank's mean step).
    static func optimizerAndRanks(_ e: FinishedEpoch) -> [(String, JSON)] {
        func num(_ x: Double?, _ digits: Double = 1e6) -> JSON {
            guard let x else { return .null }
            return .number((x * digits).rounded() / digits)
        }
        let straggler = e.straggler
        let byRank: [JSON] = e.rankStepMs.map { num($0, 1000) }
        var out: [(String, JSON)] = []
        out.append(("grad_norm_mean", num(e.gradNormMean)))
        out.append(("grad_norm_max", num(e.gradNormMax)))
        out.append(("optimizer_state_mb", num(e.optimizerStateMB, 1000)))
        out.append(("shard_optimizer", .bool(e.shardedOptimizer)))
        out.append(("rank_step_ms", .array(byRank)))
        out.append(("slowest_rank", straggler.map { .number(Double($0.rank)) } ?? .null))
        out.append(("straggler_lag_ms", num(straggler?.lagMs, 1000)))
        return out
    }

    static func line(_ e: FinishedEpoch) -> JSON {
        let r = e.report
        let train = r.train.means(beta: e.klWeight), test = r.test.means(beta: e.klWeight)
        return .object([
            ("epoch", .number(Double(r.epoch))),
            ("step", .number(Double(r.step))),
            ("train_loss", .number(train.loss)),
            ("train_bce", .number(train.bce)),
            ("train_kl", .number(train.kl)),
            ("test_loss", .number(test.loss)),
            ("test_bce", .number(test.bce)),
            ("test_kl", .number(test.kl)),
            ("samples_per_s", .number((r.samplesPerSecond * 10).rounded() / 10)),
            ("seconds", .number((r.seconds * 1000).rounded() / 1000)),
            ("world_size", .number(Double(e.worldSize))),
            ("global_batch", .number(Double(e.globalBatch))),
            ("lr", .number(e.lr)),
            ("kl_weight", .number(e.klWeight)),
        ] + (e.testNMI.map { [("test_nmi", JSON.number($0))] } ?? []) + [  // [gumbel]
        ] + (e.codebook.map { [("codebook_perplexity", JSON.number(($0.perplexity * 1000).rounded() / 1000)),
                               ("codes_used", JSON.number(Double($0.used)))] } ?? []) + [
            ("step_ms", r.times.json),
        ] + optimizerAndRanks(e) + r.times.allocationsJSON + [
            ("time", .number((Clock.wall() * 1000).rounded() / 1000)),
        ])
    }
}
