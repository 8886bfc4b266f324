import DistTrainIO
import ArgumentParser
import DistTrain
import Logging
import Models

/// `disttrain train`: the default subcommand.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a VAE from a JSON config (the default subcommand).",
        discussion: """
        Every rank reads the same config; rank r loads only its contiguous shard of the training \
        set. Flags override the config's fields. Without --config the seed CVAE recipe is used \
        (configs/cvae.json holds the same values).

        SIGTERM, SIGINT or SIGUSR1 (to any rank) stops the job at the next step with a \
        checkpoint there; a second signal exits at once. Exit statuses: \(ExitStatus.summary).
        """
    )

    @Option(name: .long, help: ArgumentHelp("JSON config file (see the README's config reference).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "Override training.epochs: passes over the training set.")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Override training.global_batch: samples per optimizer step summed over all ranks.")
    var batchSize: Int?

    @Option(name: .long, help: "Override optimizer.lr: Adam's learning rate.")
    var lr: Double?

    @Option(name: .long, help: ArgumentHelp("Override data.binarize: none (pixels / 255), dynamic (each training image redrawn as Bernoulli(pixel / 255) pixels every epoch) or static (drawn once). Draws are keyed by (seed, epoch, global sample id, pixel): the same on any number of ranks. Either binarizing mode evaluates the test loss on one fixed binarization of the test set, independent of the seed (the usual protocol for dynamically binarized MNIST); `eval` uses the same one.", valueName: "mode"))
    var binarize: String?

    @Option(name: .long, help: ArgumentHelp("Override optimizer.schedule: constant, cosine, linear, step (with --warmup-*: linear warmup first) or plateau (reduce-on-plateau of the test loss).", valueName: "kind"))
    var schedule: String?

    @Option(name: .customLong("warmup-steps"), help: "Override optimizer.warmup_steps: linear warmup from lr/N to the peak lr over N steps.")
    var warmupSteps: Int?

    @Option(name: .customLong("warmup-epochs"), help: "Override optimizer.warmup_epochs: the warmup in epochs (fractions allowed).")
    var warmupEpochs: Double?

    @Option(name: .customLong("min-lr"), help: "Override optimizer.min_lr: the floor of cosine / linear decay and of reduce-on-plateau.")
    var minLR: Double?

    @Option(name: .customLong("scale-lr"), help: ArgumentHelp("Override optimizer.scale_lr: none, linear or sqrt; the lr is scaled by (global batch / optimizer.reference_batch) or its square root.", valueName: "rule"))
    var scaleLR: String?

    @Option(name: .customLong("clip-grad-norm"), help: "Override optimizer.clip_grad_norm: clip the averaged gradient to this global L2 norm (0: off).")
    var clipGradNorm: Double?

    @Option(name: .customLong("weight-decay"), help: "Override optimizer.weight_decay: AdamW-style decoupled weight decay (0: off).")
    var weightDecay: Double?

    @Flag(name: .customLong("shard-optimizer"), help: "Set runtime.shard_optimizer (ZeRO stage 1): each rank keeps and updates 1/N of the Adam state; gradients are reduce-scattered and parameters allgathered.")
    var shardOptimizer = false

    @Flag(name: .customLong("deterministic"), help: "Set runtime.deterministic: the trained model is the same bits at 1, 2, 3, 4, 6, 8, 12 or 24 ranks and any thread count (slower: per-shard gradients, int64 sums).")
    var deterministic = false

    @Option(name: .long, help: ArgumentHelp("Write a Chrome trace-event JSON (chrome://tracing, ui.perfetto.dev) of the traced steps: one track per rank with batch filling, forward, backward, each gradient bucket's allreduce, the wait, optimizer, evaluation and checkpoint writes. Rank 0 writes it at the end.", valueName: "file"))
    var trace: String?

    @Option(name: .customLong("trace-steps"), help: ArgumentHelp("Global steps to trace (1-based, inclusive), e.g. 100-120 (default: every step).", valueName: "A-B"))
    var traceSteps: String?

    @Option(name: .long, help: "Override training.seed: initialization, sampling order and noise all derive from it.")
    var seed: Int?

    @Option(name: .long, help: ArgumentHelp("Override output.dir: the run directory rank 0 writes.", valueName: "dir"))
    var out: String?

    @Option(name: .customLong("max-steps"), help: "Override training.max_steps: stop after this many optimizer steps in total (0: no limit).")
    var maxSteps: Int?

    @Option(name: .long, help: "Override runtime.blas_threads: threads per rank for every phase of a step (0: cores on this host / ranks on this host; see --threading).")
    var threads: Int?

    @Option(name: .long, help: "Override runtime.threading: pool (disttrain's threads run every phase; default) or openblas (OpenBLAS's threads run the products, the rest one thread).")
    var threading: String?

    @Flag(name: .customLong("dense-inputs"), help: "Set runtime.sparse_inputs to false: every Linear layer runs the dense sgemm, even on inputs that are mostly zeros (for comparison).")
    var denseInputs = false

    @Option(name: .customLong("stall-timeout"), help: ArgumentHelp("Override runtime.stall_timeout_s: stop the job (exit status 76) when a rank has not reached a collective for this many seconds; a warning names it at half the time (0: off; default 300).", valueName: "seconds"))
    var stallTimeout: Double?

    @Flag(name: .customLong("print-run-dir"), help: ArgumentHelp("Print the run directory these arguments write (config and --out), then exit (for launchers).", visibility: .hidden))
    var printRunDir = false

    @Flag(name: .long, help: "Continue from the run directory's latest checkpoint (the newest intact one, if it is damaged).")
    var resume = false

    @Option(name: .customLong("resume-from"), help: ArgumentHelp("Continue from this checkpoint directory.", valueName: "dir"))
    var resumeFrom: String?

    @Option(name: .customLong("init-from"), help: ArgumentHelp("Start from the weights in this model.safetensors (disttrain's tensor names, e.g. exported from PyTorch by examples/export_from_pytorch.py) instead of a fresh initialization.", valueName: "file"))
    var initFrom: String?

    @Flag(name: .customLong("no-progress"), help: "No live progress line, even on a terminal (under mpirun, ranks see a terminal even when mpirun's output goes to a file; launch/mpirun-disttrain passes this then).")
    var noProgress = false

    @Flag(name: .customLong("no-tensorboard"), help: "Do not write TensorBoard event files to RUN/tb.")
    var noTensorboard = false

    @Option(name: .customLong("checksum-every"), help: "Debug: compare a parameter checksum across ranks every N steps and stop on drift (0: off).")
    var checksumEvery: Int?

    @Flag(name: .long, help: "Print no per-epoch lines and no info diagnostics, only warnings and errors (metrics.jsonl is still written).")
    var quiet = false

    @Option(name: .customLong("log-level"), help: "Diagnostics on stderr: trace, debug, info, notice, warning, error or critical (default: info; warning with --quiet).")
    var logLevel: Logger.Level?

    @Option(name: .customLong("poison-gradient"), help: ArgumentHelp("Debug: put a NaN into RANK's gradient at global STEP (e.g. 1:30).", valueName: "rank:step", visibility: .hidden))
    var poisonGradient: String?

    func validate() throws {
        if let b = binarize, Binarization(rawValue: b) == nil {
            throw ValidationError("--binarize must be one of \(Binarization.allCases.map(\.rawValue).joined(separator: ", ")), got \(b)")
        }
        if let s = schedule, LRScheduleKind(rawValue: s) == nil {
            throw ValidationError("--schedule must be one of \(LRScheduleKind.allCases.map(\.rawValue).joined(separator: ", ")), got \(s)")
        }
        if let t = threading, ThreadingMode(rawValue: t) == nil { throw ValidationError("--threading must be pool or openblas, got \(t)") }
        if let s = scaleLR, LRScaling(rawValue: s) == nil { throw ValidationError("--scale-lr must be none, linear or sqrt, got \(s)") }
        if let w = warmupSteps, w < 0 { throw ValidationError("--warmup-steps must be non-negative, got \(w)") }
        if let w = warmupEpochs, !(w >= 0) || !w.isFinite { throw ValidationError("--warmup-epochs must be a non-negative number, got \(w)") }
        if let m = minLR, !(m >= 0) || !m.isFinite { throw ValidationError("--min-lr must be a non-negative number, got \(m)") }
        if let c = clipGradNorm, !(c >= 0) || !c.isFinite { throw ValidationError("--clip-grad-norm must be a non-negative number, got \(c)") }
        if let w = weightDecay, !(w >= 0) || !w.isFinite { throw ValidationError("--weight-decay must be a non-negative number, got \(w)") }
        if let t = trace, t.isEmpty { throw ValidationError("--trace must not be empty") }
        if let r = traceSteps {
            guard trace != nil else { throw ValidationError("--trace-steps needs --trace FILE") }
            guard parseStepRange(r) != nil else { throw ValidationError("--trace-steps takes A-B with 1 <= A <= B (or one step A), got \(r)") }
        }
        if resume && resumeFrom != nil { throw ValidationError("--resume and --resume-from are exclusive") }
        if initFrom != nil && (resume || resumeFrom != nil) { throw ValidationError("--init-from starts a new run; it cannot be combined with --resume") }
        if poisonGradient != nil && parsePoison() == nil { throw ValidationError("--poison-gradient takes RANK:STEP, e.g. 1:30") }
    }

    func parsePoison() -> (rank: Int, step: Int)? {
        guard let p = poisonGradient else { return nil }
        let parts = p.split(separator: ":")
        guard parts.count == 2, let r = Int(parts[0]), let s = Int(parts[1]), r >= 0, s >= 0 else { return nil }
        return (r, s)
    }

    /// The options that set a config field; their values are checked with the field's limits
    /// once they are applied (`TrainConfig.load(path:overrides:)`).
    var overrides: [ConfigOverride] {
        var list: [ConfigOverride] = []
        if let v = epochs { list.append(ConfigOverride("--epochs", \.training.epochs, v)) }
        if let v = batchSize { list.append(ConfigOverride("--batch-size", \.training.globalBatch, v)) }
        if let v = lr { list.append(ConfigOverride("--lr", \.optimizer.lr, v)) }
        if let v = seed { list.append(ConfigOverride("--seed", \.training.seed, v)) }
        if let v = out { list.append(ConfigOverride("--out", \.output.dir, v)) }
        if let v = maxSteps { list.append(ConfigOverride("--max-steps", \.training.maxSteps, v)) }
        if let v = threads { list.append(ConfigOverride("--threads", \.runtime.blasThreads, v)) }
        if let v = threading.flatMap(ThreadingMode.init(rawValue:)) { list.append(ConfigOverride("--threading", \.runtime.threading, v)) }
        if denseInputs { list.append(ConfigOverride("--dense-inputs", \.runtime.sparseInputs, false)) }
        if let v = checksumEvery { list.append(ConfigOverride("--checksum-every", \.runtime.checksumEvery, v)) }
        if let v = binarize.flatMap(Binarization.init(rawValue:)) { list.append(ConfigOverride("--binarize", \.data.binarize, v)) }
        if let v = schedule.flatMap(LRScheduleKind.init(rawValue:)) { list.append(ConfigOverride("--schedule", \.optimizer.schedule, v)) }
        if let v = warmupSteps {
            list.append(ConfigOverride("--warmup-steps", \.optimizer.warmupSteps, v))
            if v > 0 { list.append(ConfigOverride("--warmup-steps", \.optimizer.warmupEpochs, 0)) }
        }
        if let v = warmupEpochs {
            list.append(ConfigOverride("--warmup-epochs", \.optimizer.warmupEpochs, v))
            if v > 0 { list.append(ConfigOverride("--warmup-epochs", \.optimizer.warmupSteps, 0)) }
        }
        if let v = minLR { list.append(ConfigOverride("--min-lr", \.optimizer.minLR, v)) }
        if let v = scaleLR.flatMap(LRScaling.init(rawValue:)) { list.append(ConfigOverride("--scale-lr", \.optimizer.scaleLR, v)) }
        if let v = clipGradNorm { list.append(ConfigOverride("--clip-grad-norm", \.optimizer.clipGradNorm, v)) }
        if let v = weightDecay { list.append(ConfigOverride("--weight-decay", \.optimizer.weightDecay, v)) }
        if shardOptimizer { list.append(ConfigOverride("--shard-optimizer", \.runtime.shardOptimizer, true)) }
        if deterministic { list.append(ConfigOverride("--deterministic", \.runtime.deterministic, true)) }
        if let v = stallTimeout { list.append(ConfigOverride("--stall-timeout", \.runtime.stallTimeoutS, v)) }
        return list
    }

    /// The config file (or the defaults) with the flags applied, checked once.
    func effectiveConfig() throws -> TrainConfig {
        try TrainConfig.load(path: config, overrides: overrides)
    }

    func run() throws {
        if printRunDir {
            // Before MPI: a launcher asks this between jobs.
            print(try effectiveConfig().output.dir)
            return
        }
        // Handlers first: a stop signal during MPI start-up or data loading is then a graceful
        // stop at the first step, not the default death.
        StopSignal.install(speaks: false)
        let comm = CommunicatorFactory.world()
        StopSignal.setSpeaks(comm.isWriter)
        let log = Diagnostics.logger(rank: comm.rank, level: logLevel ?? (quiet ? .warning : .info))
        let config = try comm.collectively { try effectiveConfig() }
        var options = TrainOptions()
        options.resume = resume
        options.resumeFrom = resumeFrom
        options.printEpochs = !quiet
        options.poisonGradient = parsePoison()
        options.initFrom = initFrom
        options.tensorboard = !noTensorboard
        options.liveProgress = !noProgress
        options.tracePath = trace
        options.traceSteps = traceSteps.flatMap(parseStepRange)
        let trainer = try Trainer(config: config, comm: comm, options: options, logger: log)
        try trainer.fit()
        if comm.isWriter && !quiet, let last = trainer.reports.last {
            print("done: \(last.step) steps; run directory \(config.output.dir)")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
