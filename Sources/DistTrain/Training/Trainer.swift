import DistTrainIO
import Logging
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Data-parallel training of one VAE: every rank runs this with the same config.
///
/// Per step: fill the local batch from this rank's shard, forward + backward into the flat
/// gradient buffer (scaled by 1 / global batch), one in-place allreduce sum of that buffer
/// (the loss sums ride along in two extra slots), then the same Adam update on every rank.
/// At each epoch end: evaluate on the test set (sharded), hand the epoch to the outputs
/// (metrics, console, TensorBoard, pictures; rank 0), write a checkpoint.
///
/// Setup (data, plan, model, agreement across ranks, resume) lives in `TrainingSetup`.
public final class Trainer {
    public let comm: Communicator
    public let config: TrainConfig
    public let model: VAE
    /// [parameterCount] the one flat parameter buffer.
    public let params: FloatBuffer
    /// [parameterCount + 2] gradients, then the step's BCE and KL sums riding the allreduce.
    public let grads: FloatBuffer
    public let adam: Adam
    public let plan: BatchPlan
    public let localBatch: Int
    public private(set) var state: TrainerState
    public private(set) var reports: [EpochReport] = []
    /// Time spent in each phase of the steps of the epoch in progress.
    public var times: PhaseTimes { timer.times }
    /// [gumbel] Test NMI of argmax q(c|x) against the labels from the last `evaluate()` (categorical models only).
    public private(set) var lastTestNMI: Double?

    let log: Logger
    let options: TrainOptions
    let train: DatasetShard
    let test: DatasetShard
    let sampler: StratifiedSampler
    let workspace: VAEWorkspace
    let run: RunDirectory
    let klWeight: Float
    let seed: UInt64
    let reducer: GradientReducer
    var timer: StepTimer
    /// What rank 0 writes at each epoch end, in order.
    let outputs: [EpochOutput]
    let console: ConsoleReport?

    /// Loads data, builds the model and agrees on everything across ranks (see
    /// `TrainingSetup`). Every failure here stops all ranks with the failing rank's message.
    public init(config: TrainConfig, comm: Communicator, options: TrainOptions = TrainOptions(), logger: Logger) throws {
        let setup = try TrainingSetup(config: config, comm: comm, options: options, log: logger)
        self.comm = comm
        self.config = config
        self.options = options
        log = logger
        klWeight = Float(config.training.klWeight)
        seed = UInt64(config.training.seed)
        train = setup.train
        test = setup.test
        plan = setup.plan
        localBatch = setup.plan.localBatch(comm.rank)
        sampler = setup.sampler
        model = setup.model
        params = setup.params
        grads = setup.grads
        adam = setup.adam
        workspace = setup.workspace
        reducer = setup.reducer
        state = setup.state
        run = setup.run
        timer = StepTimer(reducer: setup.reducer)

        var outputs: [EpochOutput] = []
        var console: ConsoleReport?
        if comm.isWriter {
            outputs.append(EpochGrids(model: model, params: params, test: test, run: run, events: setup.events,
                                      every: config.output.gridEvery, seed: seed))
            if config.output.animationMs > 0 && config.output.gridEvery > 0 {
                outputs.append(GridAnimation(run: run, frameMilliseconds: config.output.animationMs))
            }
            outputs.append(MetricsFile(run: run))
            if let events = setup.events { outputs.append(TensorBoardScalars(events: events)) }
            if options.printEpochs {
                console = ConsoleReport(liveProgress: options.liveProgress)
                outputs.append(console!)
            }
        }
        self.outputs = outputs
        self.console = console
    }

    // MARK: Training

    /// Trains until the configured epochs (or max_steps) are done.
    public func fit() throws {
        let steps = sampler.steps
        let maxSteps = config.training.maxSteps
        func stepsLeft() -> Bool { !(maxSteps > 0 && state.globalStep >= maxSteps) }
        if comm.isWriter {
            log.info("model: \(model.trainableCount) parameters, \(model.trainingFlopsPerSample / 1000) kFLOP per sample per step")
            log.info("world \(comm.size): global batch \(plan.globalBatch), local batch \(localBatch) on rank 0, \(steps) steps per epoch\(steps < plan.stepsPerEpoch ? " (of \(plan.stepsPerEpoch): the rarest label of a shard limits it)" : ""), BLAS threads \(BLASThreads.current)")
        }
        while state.epoch < config.training.epochs && stepsLeft() {
            let started = Clock.now()
            let order = sampler.order(epoch: state.epoch)
            let firstStep = state.stepInEpoch
            timer.reset()
            console?.startEpoch(at: started)
            while state.stepInEpoch < steps && stepsLeft() {
                let loss = try step(order: order)
                state.recordStep(loss)
                console?.progress(state: state, steps: steps, firstStep: firstStep, started: started,
                                  totalEpochs: config.training.epochs, globalBatch: plan.globalBatch,
                                  klWeight: Double(klWeight))
                try checkDrift()
                if config.output.checkpointEverySteps > 0 && state.globalStep % config.output.checkpointEverySteps == 0 && state.stepInEpoch < steps {
                    try saveCheckpoint(testLoss: nil)
                }
            }
            let completed = state.stepInEpoch == steps
            var evalStart = Clock.now()
            let testLoss = evaluate()
            timer.addEvaluation(Clock.lap(&evalStart))
            let seconds = Clock.now() - started
            let report = EpochReport(epoch: state.epoch + 1, step: state.globalStep, train: state.epochLoss, test: testLoss,
                                     samplesPerSecond: Double((state.stepInEpoch - firstStep) * plan.globalBatch) / max(seconds, 1e-9),
                                     seconds: seconds, times: timer.times)
            if completed { state.finishEpoch() }
            reports.append(report)
            try writeOutputs(report)
            try saveCheckpoint(testLoss: testLoss.means(beta: Double(klWeight)).loss)
            if !completed { break }
        }
    }

    /// One synchronized optimizer step on this rank's next local batch (in `accumulate`
    /// micro-batches): forward and backward, gradients summed across ranks (in buckets that
    /// start while backward still runs, in overlap mode), then the same Adam update everywhere.
    @inline(__always)
    func step(order: [Int32]) throws -> BatchLoss {
        let micro = config.training.accumulate
        let scale = 1 / Float(plan.globalBatch)
        var local = BatchLoss()
        var first = state.stepInEpoch * localBatch
        timer.beginStep()
        workspace.temperature = Temperature.at(step: state.globalStep, config: config)  // [gumbel]
        for m in 0..<micro {
            let rows = localBatch / micro + (m < localBatch % micro ? 1 : 0)
            fillBatch(order: order, from: first, rows: rows)
            timer.lap(.data)
            local += model.forwardForTraining(params.base, workspace, rows: rows, scale: scale)
            poisonIfAsked(microBatch: m)
            timer.lap(.forward)
            let last = m == micro - 1
            if last { reducer.begin() }
            model.backward(params.base, grads.base, workspace, rows: rows, scale: scale, beta: klWeight,
                           accumulate: m > 0) { offset in if last { reducer.finished(upTo: offset) } }
            timer.lap(.backward)
            first += rows
        }
        let global = reduce(local)
        timer.lap(.allreduce)
        try checkFinite()
        adam.update(params.base, grads.base, count: params.count)
        timer.lap(.optimizer)
        timer.endStep()
        return global
    }

    /// Rows `first..<first + rows` of this epoch's order into the workspace, with their noise.
    @inline(__always)
    func fillBatch(order: [Int32], from first: Int, rows: Int) {
        let a = model.architecture
        order.withUnsafeBufferPointer { o in
            for r in 0..<rows { train.fill(workspace, row: r, local: Int(o[first + r]), architecture: a) }
        }
        let key = GaussianNoise.key(seed: seed, stream: NoiseStream.train, counter: UInt64(state.globalStep))
        GaussianNoise.fill(workspace.eps.base, rows: rows, dim: a.latent, ids: workspace.ids, key: key)
    }

    /// Sums gradients and the step's loss sums across ranks; returns the global batch's loss.
    @inline(__always)
    func reduce(_ local: BatchLoss) -> BatchLoss {
        let p = params.count
        grads.base[p] = Float(local.bce)
        grads.base[p + 1] = Float(local.kl)
        reducer.complete()
        return BatchLoss(bce: Double(grads.base[p]), kl: Double(grads.base[p + 1]), rows: plan.globalBatch)
    }

    /// Every rank holds the same sums after the allreduce, so every rank stops at the same step.
    @inline(__always)
    func checkFinite() throws {
        if !Numerics.allFinite(grads.base, count: params.count + 2) {
            throw SharedFailure(message: "non-finite \(nonFiniteTensor()) at step \(state.globalStep + 1) (epoch \(state.epoch + 1)); stopped before the update, last checkpoint kept")
        }
    }

    /// Debug (--poison-gradient): a NaN in one rank's output gradient at one step.
    @inline(__always)
    func poisonIfAsked(microBatch m: Int) {
        guard m == 0, let p = options.poisonGradient, p.rank == comm.rank, p.step == state.globalStep else { return }
        workspace.logits.base[0] = .nan
    }

    /// Names the first tensor holding a NaN or infinity (only called on failure).
    func nonFiniteTensor() -> String {
        let p = params.count
        if !grads.base[p].isFinite || !grads.base[p + 1].isFinite { return "loss" }
        for slot in model.layout.exported where !Numerics.allFinite(grads.base + slot.offset, count: slot.count) {
            return "gradient of \(slot.name)"
        }
        return "gradient"
    }

    /// Debug drift check: every `checksum_every` steps all ranks compare parameter checksums.
    func checkDrift() throws {
        let every = config.runtime.checksumEvery
        guard every > 0, state.globalStep % every == 0 else { return }
        let mine = Numerics.checksum(params.base, count: params.count)
        let all = comm.allgather(Array(String(mine, radix: 16).utf8)).map { String(decoding: $0, as: UTF8.self) }
        if let bad = all.firstIndex(where: { $0 != all[0] }) {
            throw SharedFailure(message: "parameter drift at step \(state.globalStep): rank \(bad) checksum \(all[bad]) differs from rank 0's \(all[0])")
        }
    }

    /// Mean loss terms over the whole test set, sharded over ranks.
    ///
    /// For a categorical latent the terms are exact (every category decoded, no relaxed sample),
    /// so the test loss does not move with the Gumbel temperature and `best` means best; the
    /// normalized mutual information of the most likely category with the label comes along.
    public func evaluate() -> BatchLoss {
        let a = model.architecture
        if a.latentKind == .categorical {  // [gumbel]
            let exact = CategoricalEvaluation.run(model: model, params: params.base, shard: test, posteriorMean: false)
                .summed(over: comm)
            lastTestNMI = exact.tally.nmi
            return BatchLoss(bce: exact.sums.bce, kl: exact.sums.kl, rows: exact.sums.count)
        }
        var total = BatchLoss()
        var start = 0
        let key = GaussianNoise.key(seed: seed, stream: NoiseStream.test, counter: UInt64(state.epoch))
        while start < test.count {
            let rows = min(workspace.capacity, test.count - start)
            for r in 0..<rows { test.fill(workspace, row: r, local: start + r, architecture: a) }
            GaussianNoise.fill(workspace.eps.base, rows: rows, dim: a.latent, ids: workspace.ids, key: key)
            total += model.loss(params.base, workspace, rows: rows)
            start += rows
        }
        let sums = comm.sum([total.bce, total.kl, Double(total.rows)])
        return BatchLoss(bce: sums[0], kl: sums[1], rows: Int(sums[2]))
    }

    // MARK: Outputs

    /// Rank 0 hands the epoch to every output; all ranks learn whether that worked.
    func writeOutputs(_ report: EpochReport) throws {
        let epoch = FinishedEpoch(report: report, totalEpochs: config.training.epochs, worldSize: comm.size,
                                  globalBatch: plan.globalBatch, klWeight: Double(klWeight), lr: config.optimizer.lr,
                                  testNMI: lastTestNMI)
        try comm.onWriter {
            for output in outputs { try output.write(epoch) }
        }
    }

    /// Rank 0 writes a checkpoint of the current state; all ranks learn whether it worked.
    func saveCheckpoint(testLoss: Double?) throws {
        try comm.onWriter {
            var s = state
            let name = RunDirectory.checkpointName(step: s.globalStep)
            let isBest = testLoss.map { $0 < s.bestTestLoss } ?? false
            if isBest { s.bestTestLoss = testLoss!; s.bestCheckpoint = name }
            _ = try run.writeCheckpoint(step: s.globalStep, keep: config.output.keepCheckpoints) { dir in
                try Checkpoint.writeModel(model, params: params.base, to: dir + "/model.safetensors", extra: [
                    ("epoch", String(s.epoch)), ("step", String(s.globalStep)), ("training_config", config.json.serialized),
                ])
                try Checkpoint.writeOptimizer(model, adam: adam, to: dir + "/optimizer.safetensors")
                try AtomicFile.write(Array(s.json.pretty.utf8), to: dir + "/trainer.json")
            }
            if isBest { try run.setPointer("best", to: name) }
            state = s
        }
        // Keep the best-loss bookkeeping identical on every rank.
        if let t = testLoss, t < state.bestTestLoss {
            state.bestTestLoss = t
            state.bestCheckpoint = RunDirectory.checkpointName(step: state.globalStep)
        }
    }
}
