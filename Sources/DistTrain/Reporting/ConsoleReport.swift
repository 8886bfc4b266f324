#if canImport(Glibc)
import Glibc
#endif

/// The per-epoch line on stdout, and on a terminal a live progress line during the epoch
/// that the epoch line then replaces.
final class ConsoleReport: EpochOutput {
    /// Whether the live line is drawn: stdout is a terminal and the user did not turn it off.
    let live: Bool
    private var lastShown = 0.0

    init(liveProgress: Bool) {
        live = liveProgress && isatty(STDOUT_FILENO) == 1
    }

    func write(_ e: FinishedEpoch) throws {
        if live { print("\r\u{1B}[K", terminator: "") }
        print(ConsoleReport.line(e))
        fflush(stdout)
    }

    static func line(_ e: FinishedEpoch) -> String {
        let r = e.report
        let train = r.train.means(beta: e.klWeight), test = r.test.means(beta: e.klWeight)
        return "epoch \(pad(r.epoch, 3, " "))/\(e.totalEpochs)  step \(pad(r.step, 6, " "))  "
            + "train \(fmt(train.loss)) (bce \(fmt(train.bce)), kl \(fmt(train.kl)))  "
            + "test \(fmt(test.loss))  " + (e.testNMI.map { "nmi \(fmt($0))  " } ?? "")  // [gumbel]
            + (e.codebook.map { "perplexity \(fmt($0.perplexity)), codes used \($0.used)/\($0.size)  " } ?? "")
            + "\(fmt(r.samplesPerSecond, 0)) samples/s  \(fmt(r.seconds, 2))s"
    }

    /// Redraws the live line at most four times a second: step, running loss, throughput,
    /// time left in the epoch.
    func progress(state: TrainerState, steps: Int, firstStep: Int, started: Double,
                  totalEpochs: Int, globalBatch: Int, klWeight: Double) {
        guard live else { return }
        let now = Clock.now()
        guard now - lastShown > 0.25 else { return }
        lastShown = now
        let done = state.stepInEpoch - firstStep
        let elapsed = now - started
        let rate = Double(done * globalBatch) / max(elapsed, 1e-9)
        let eta = Double(steps - state.stepInEpoch) * elapsed / Double(max(done, 1))
        let loss = state.epochLoss.means(beta: klWeight).loss
        print("\r\u{1B}[Kepoch \(state.epoch + 1)/\(totalEpochs)  step \(state.stepInEpoch)/\(steps)  "
              + "loss \(fmt(loss))  \(fmt(rate, 0)) samples/s  ETA \(fmt(eta, 1))s", terminator: "")
        fflush(stdout)
    }

    /// Marks the start of an epoch (the first redraw waits a quarter second from here).
    func startEpoch(at time: Double) { lastShown = time }
}
