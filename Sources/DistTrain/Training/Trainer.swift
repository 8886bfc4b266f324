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
/// Deterministic mode (`runtime.deterministic`, `pieceStep`): each of the rank's pieces
/// (virtual shards) runs as its own micro-batch into its own gradient buffer, and the sums
/// are exact (`PieceReduction`), so the weights do not depend on the world size.
///
/// Setup (data, plan, model, agreement across ranks, resume) lives in `TrainingSetup`.
public final class Trainer {
    public let comm: Communicator
    public let config: TrainConfig
    public let model: VAE
    /// [parameterCount] the one flat parameter buffer.
    public let params: FloatBuffer
    /// [parameterCount + 3] gradients, then the step's BCE and KL sums and the number of
    /// ranks that received a stop signal, riding the allreduce.
    public let grads: FloatBuffer
    /// Adam over all parameters, or over this rank's slice `shard` with `runtime.shard_optimizer`.
    public let adam: Adam
    /// The parameters whose optimizer state and update live on this rank (all of them unsharded).
    public let shard: Range<Int>
    /// Every rank's slice length (ZeRO-1), nil when the optimizer is not sharded.
    let shardCounts: [Int]?
    /// The learning rate of each step.
    public let schedule: LRSchedule
    /// The lr of the latest step (what metrics.jsonl reports as `lr`).
    public private(set) var currentLR: Double
    public let plan: BatchPlan
    public let localBatch: Int
    public private(set) var state: TrainerState
    /// [stateCount] BatchNorm running statistics (eval mode reads them; saved with the model).
    public let modelState: FloatBuffer
    /// SyncBN's cross-rank sums, or nil (per-rank statistics, or one rank).
    let batchStatistics: BatchStatisticsReducer?
    /// [vq] An EMA codebook's per-step counts and sums across ranks (nil: one rank, or no EMA).
    let codebookStatistics: BatchStatisticsReducer?
    public private(set) var reports: [EpochReport] = []
    /// Time spent in each phase of the steps of the epoch in progress.
    public var times: PhaseTimes { timer.times }
    /// [gumbel] Test NMI of argmax q(c|x) against the labels from the last `evaluate()` (categorical models only).
    public private(set) var lastTestNMI: Double?
    /// Codebook perplexity and codes used over the last epoch's training assignments on every
    /// rank (VQ-VAE only). A resumed epoch counts only the steps run since the resume.
    public private(set) var lastCodebookUsage: CodebookUsage?

    let log: Logger
    let options: TrainOptions
    let train: DatasetShard
    let test: DatasetShard
    let sampler: any BatchSampler
    /// Deterministic mode's pieces and exact sums (nil in normal mode).
    let pieces: PieceReduction?
    let workspace: VAEWorkspace
    let run: RunDirectory
    let klWeight: Float
    let seed: UInt64
    let reducer: GradientReducer
    /// ZeRO-1 with overlap: the parameter allgather that the next forward waits for layer by
    /// layer (nil: unsharded, `allreduce` single, `overlap_allgather` false, deterministic
    /// mode, or one rank). See `completeParameterGathers()`.
    public let gather: ParameterGather?
    var timer: StepTimer
    /// Global gradient norms of the epoch in progress (before clipping).
    var gradNorms = GradNormStats()
    /// [1] scratch for the one-number allreduce of the sharded gradient's sum of squares.
    let normScratch: UnsafeMutablePointer<Double>
    /// [Numerics.blocks(params)] float32 block sums of the pooled gradient norm.
    let normBlocks: UnsafeMutablePointer<Float>
    /// Step trace (`--trace`), nil when off.
    let trace: TraceRecorder?
    /// Some rank received a stop signal; every rank learns it at the same step (the allreduce).
    public private(set) var stopAgreed = false
    /// Rank 0's hold on RUN/.lock.
    let runLock: RunLock?
    /// What rank 0 writes at each epoch end, in order.
    let outputs: [EpochOutput]
    let console: ConsoleReport?

    /// Loads data, builds the model and agrees on everything across ranks (see
    /// `TrainingSetup`). Every failure here stops all ranks with the failing rank's message.
    public init(config: TrainConfig, comm: Communicator, options: TrainOptions = TrainOptions(), logger: Logger) throws {
        comm.startStallWatchdog(timeoutSeconds: config.runtime.stallTimeoutS)
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
        localBatch = setup.localBatch
        sampler = setup.sampler
        pieces = setup.pieces
        model = setup.model
        params = setup.params
        grads = setup.grads
        adam = setup.adam
        shard = setup.shard
        shardCounts = setup.shardCounts
        schedule = setup.schedule
        currentLR = setup.schedule.lr(step: setup.trainerState.globalStep, plateauFactor: setup.trainerState.plateau.factor)
        normScratch = .allocate(capacity: 1)
        normBlocks = .allocate(capacity: Numerics.blocks(setup.params.count))
        workspace = setup.workspace
        reducer = setup.reducer
        if let counts = setup.shardCounts, config.runtime.allreduce == .overlap, config.runtime.overlapAllgather,
           setup.pieces == nil, comm.size > 1 {
            gather = ParameterGather(comm: comm, params: setup.params.base, shardCounts: counts,
                                     ranges: setup.reducer.buckets.reversed(), book: setup.reducer)
        } else {
            gather = nil
        }
        state = setup.trainerState
        modelState = setup.state
        batchStatistics = setup.batchStatistics
        codebookStatistics = setup.codebookStatistics
        run = setup.run
        if let range = options.traceSteps ?? (options.tracePath == nil ? nil : 1...Int(Int32.max)) {
            let perStep = 3 * config.training.accumulate + 4 * setup.reducer.buckets.count + 6
            let totalSteps = config.training.maxSteps > 0 ? config.training.maxSteps : config.training.epochs * setup.sampler.steps
            let traced = min(range.upperBound, totalSteps) - range.lowerBound + 1
            trace = TraceRecorder(steps: range, eventsPerStep: perStep, tracedSteps: max(traced, 0),
                                  epochEnds: 2 * (config.training.epochs + 1), comm: comm)
        } else {
            trace = nil
        }
        setup.reducer.trace = trace
        gather?.trace = trace
        runLock = setup.lock
        timer = StepTimer(reducer: setup.reducer, trace: trace)

        var outputs: [EpochOutput] = []
        var console: ConsoleReport?
        if comm.isWriter {
            outputs.append(EpochGrids(model: model, params: params, state: modelState, test: test, run: run, events: setup.events,
                                      every: config.output.gridEvery, seed: seed))
            if config.output.animationMs > 0 && config.output.gridEvery > 0 && model.quantizer == nil {
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

    deinit {
        normScratch.deallocate()
        normBlocks.deallocate()
    }

    // MARK: Training

    /// Trains until the configured epochs (or max_steps) are done.
    public func fit() throws {
        let steps = sampler.steps
        let maxSteps = config.training.maxSteps
        func stepsLeft() -> Bool { !(maxSteps > 0 && state.globalStep >= maxSteps) }
        if comm.isWriter {
            log.info("model: \(model.trainableCount) parameters, \(model.trainingFlopsPerSample / 1000) kFLOP per sample per step")
            log.info("optimizer: \(schedule.kind.rawValue) schedule, peak lr \(schedule.peak)\(schedule.warmup > 0 ? ", \(schedule.warmup) warmup steps" : "")\(config.optimizer.clipGradNorm > 0 ? ", gradients clipped to norm \(config.optimizer.clipGradNorm)" : "")\(config.optimizer.weightDecay > 0 ? ", weight decay \(config.optimizer.weightDecay)" : ""); Adam state \(fmt(optimizerStateMB, 2)) MB per rank\(shardCounts != nil ? " (sharded 1/\(comm.size))" : "")")
            if model.architecture.latentKind == .categorical {
                let k = model.architecture.latent
                let images = CategoricalBudget.images(categories: k, total: test.totalCount)
                log.info("test loss: exact over \(k) categories, on \(images == test.totalCount ? "all \(images)" : "the first \(images) of \(test.totalCount)") test images (\(k) x images decoder rows, at most \(CategoricalBudget.decoderRows))")
            }
            if let d = pieces {
                log.info("world \(comm.size), deterministic: global batch \(plan.globalBatch) in \(VirtualShards.count) pieces of \(d.shards.pieceRows(VirtualShards.count - 1))-\(d.shards.largestPiece) rows, \(d.pieces.count) on each rank (local batch \(localBatch) on rank 0), \(steps) steps per epoch, \(RankThreads.description)")
            } else {
                log.info("world \(comm.size): global batch \(plan.globalBatch), local batch \(localBatch) on rank 0, \(steps) steps per epoch\(steps < plan.stepsPerEpoch ? " (of \(plan.stepsPerEpoch): the rarest label of a shard limits it)" : ""), \(RankThreads.description)")
            }
        }
        while state.epoch < config.training.epochs && stepsLeft() {
            let started = Clock.now()
            let order = sampler.order(epoch: state.epoch)
            let firstStep = state.stepInEpoch
            timer.reset()
            gradNorms = GradNormStats()
            workspace.resetCodeCounts()
            console?.startEpoch(at: started)
            while state.stepInEpoch < steps && stepsLeft() {
                comm.watchdogStep(state.globalStep + 1)
                let loss = try step(order: order)
                state.recordStep(loss)
                console?.progress(state: state, steps: steps, firstStep: firstStep, started: started,
                                  totalEpochs: config.training.epochs, globalBatch: plan.globalBatch,
                                  klWeight: Double(klWeight))
                try checkDrift()
                if stopAgreed && state.stepInEpoch < steps && stepsLeft() {
                    throw stopped(checkpoint: try saveCheckpoint(testLoss: nil))
                }
                if stopAgreed { break }  // the epoch (or the run) ends at this step: finish it first
                if config.output.checkpointEverySteps > 0 && state.globalStep % config.output.checkpointEverySteps == 0 && state.stepInEpoch < steps {
                    try saveCheckpoint(testLoss: nil)
                }
            }
            let completed = state.stepInEpoch == steps
            var evalStart = Clock.now()
            let evalBegan = evalStart
            let testLoss = evaluate()
            timer.addEvaluation(Clock.lap(&evalStart))
            trace?.recordEpochEnd(.evaluation, start: evalBegan, end: evalStart, afterStep: state.globalStep)
            let rankStepMs = stragglers()
            lastCodebookUsage = codebookUsage()
            let seconds = Clock.now() - started
            let report = EpochReport(epoch: state.epoch + 1, step: state.globalStep, train: state.epochLoss, test: testLoss,
                                     samplesPerSecond: Double((state.stepInEpoch - firstStep) * plan.globalBatch) / max(seconds, 1e-9),
                                     seconds: seconds, times: timer.times)
            let meanTest = testLoss.means(beta: Double(klWeight)).loss
            if completed {
                state.finishEpoch()
                // Only whole epochs step the plateau, so a resumed epoch sees the same history.
                if schedule.kind == .plateau {
                    let o = config.optimizer
                    state.plateau.observe(meanTest, reduction: o.plateauFactor, patience: o.plateauPatience, threshold: o.plateauThreshold)
                }
            }
            reports.append(report)
            try writeOutputs(report, rankStepMs: rankStepMs)
            let saveStart = Clock.now()
            let saved = try saveCheckpoint(testLoss: meanTest)
            trace?.recordEpochEnd(.checkpoint, start: saveStart, end: Clock.now(), afterStep: state.globalStep)
            if !completed { break }
            if stopAgreed && state.epoch < config.training.epochs && stepsLeft() { throw stopped(checkpoint: saved) }
        }
        completeParameterGathers()
        if let trace, let path = options.tracePath {
            try trace.write(to: path, comm: comm)
            if comm.isWriter { log.info("trace of steps \(trace.steps.lowerBound)-\(min(trace.steps.upperBound, state.globalStep)): \(path)") }
        }
        runLock?.release()
    }

    /// The error that ends a run stopped by a signal, once its checkpoint is written.
    func stopped(checkpoint name: String) -> StopRequested {
        runLock?.release()
        return StopRequested(step: state.globalStep, epoch: state.epoch + 1, checkpoint: run.checkpoints + "/" + name,
                             signal: StopSignal.pending)
    }

    /// The epoch's code counts summed over ranks (one small allreduce; VQ-VAE only).
    func codebookUsage() -> CodebookUsage? {
        guard model.quantizer != nil else { return nil }
        let counts = Array(UnsafeBufferPointer(start: workspace.codeCounts, count: workspace.codebookSize))
        return CodebookUsage(counts: comm.sum(counts))
    }

    /// Every rank's mean step time of the epoch (ms, without the allreduce wait: the wait is
    /// where fast ranks absorb a slow one's lag). One small allgather per epoch.
    func stragglers() -> [Double] {
        let t = timer.times
        let busy = (t.data + t.forward + t.backward + t.optimizer + t.allgather) / Double(max(t.steps, 1)) * 1000
        return comm.allgather(withUnsafeBytes(of: busy.bitPattern.littleEndian) { Array($0) }).map { bytes in
            var v: UInt64 = 0
            for (i, b) in bytes.prefix(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return Double(bitPattern: v)
        }
    }

    /// Bytes of Adam state (two moments) this rank holds, in MB.
    public var optimizerStateMB: Double { Double(adam.m.count + adam.v.count) * 4 / 1_048_576 }

    /// One synchronized optimizer step on this rank's next local batch (in `accumulate`
    /// micro-batches): forward and backward, gradients summed across ranks (in buckets that
    /// start while backward still runs, in overlap mode), then the same Adam update everywhere.
    @inline(__always)
    func step(order: [Int32]) throws -> BatchLoss {
        if let d = pieces { return try pieceStep(d, order: order) }
        let micro = config.training.accumulate
        let scale = 1 / Float(plan.globalBatch)
        var local = BatchLoss()
        var first = state.stepInEpoch * localBatch
        timer.beginStep()
        trace?.beginStep(state.globalStep + 1)
        _ = gather?.takeWaitSeconds()  // waits outside steps (epoch ends) are not this step's
        workspace.temperature = Temperature.at(step: state.globalStep, config: config)  // [gumbel]
        for m in 0..<micro {
            let rows = localBatch / micro + (m < localBatch % micro ? 1 : 0)
            fillBatch(order: order, from: first, rows: rows)
            timer.lap(.data)
            local += model.forwardForTraining(params.base, workspace, rows: rows, scale: scale, state: modelState.base,
                                              reducer: batchStatistics, codebookReducer: codebookStatistics) { offset in
                gather?.need(offset)
            }
            // Backward and a code restart read every parameter: the gathers forward did not reach.
            completeParameterGathers()
            if let gather { timer.moveToAllgather(gather.takeWaitSeconds(), from: .forward) }
            if restartsCodes { restartDeadCodes(microBatch: m, rows: rows) }
            poisonIfAsked(microBatch: m)
            timer.lap(.forward)
            let last = m == micro - 1
            if last { reducer.begin() }
            model.backward(params.base, grads.base, workspace, rows: rows, scale: scale, beta: klWeight,
                           accumulate: m > 0, reducer: batchStatistics) { offset in if last { reducer.finished(upTo: offset) } }
            timer.lap(.backward)
            first += rows
        }
        let global = reduce(local)
        timer.lap(.allreduce)
        try update()
        return global
    }

    /// Deterministic mode's step: each of this rank's pieces (virtual shards) forward and
    /// backward over exactly its rows into its own gradient buffer, then the exact sums
    /// (`ExactGradientSum` for the gradient, `PieceSums` for the losses, the BatchNorm
    /// statistics and the stop count), then the same update as normal mode.
    @inline(__always)
    func pieceStep(_ d: PieceReduction, order: [Int32]) throws -> BatchLoss {
        let scale = 1 / Float(plan.globalBatch)
        var first = state.stepInEpoch * localBatch
        timer.beginStep()
        trace?.beginStep(state.globalStep + 1)
        workspace.temperature = Temperature.at(step: state.globalStep, config: config)  // [gumbel]
        d.stepSums.clear()
        for (i, v) in d.pieces.enumerated() {
            let rows = d.rows[i]
            fillBatch(order: order, from: first, rows: rows)
            timer.lap(.data)
            d.statistics?.begin(piece: v)
            let loss = model.forwardForTraining(params.base, workspace, rows: rows, scale: scale, state: modelState.base,
                                                reducer: d.statistics)
            poisonIfAsked(microBatch: i)
            timer.lap(.forward)
            model.backward(params.base, d.gradients.piece(i), workspace, rows: rows, scale: scale, beta: klWeight,
                           accumulate: false, reducer: d.statistics) { _ in }
            timer.lap(.backward)
            d.stepSums.slot(v)[0] = loss.bce
            d.stepSums.slot(v)[1] = loss.kl
            first += rows
        }
        d.stepSums.extras[0] = StopSignal.pending != 0 ? 1 : 0
        d.gradients.reduce(into: grads.base)
        d.stepSums.share()
        if d.stepSums.extras[0] > 0 { stopAgreed = true }
        d.statistics?.applyRunningUpdates(modelState.base)
        let global = BatchLoss(bce: d.stepSums.total(0), kl: d.stepSums.total(1), rows: plan.globalBatch)
        grads.base[params.count] = Float(global.bce)
        grads.base[params.count + 1] = Float(global.kl)
        timer.lap(.allreduce)
        try update()
        return global
    }

    /// The rest of a step once every rank holds the summed gradient: the norm (and the
    /// finiteness check), clipping, Adam, and the parameter allgather of a sharded optimizer.
    @inline(__always)
    func update() throws {
        let norm = try gradientNorm()
        let clip = config.optimizer.clipGradNorm
        if clip > 0 { Numerics.clip(grads.base + shard.lowerBound, count: shard.count, norm: norm, maxNorm: clip) }
        currentLR = schedule.lr(step: state.globalStep, plateauFactor: state.plateau.factor)
        adam.lr = Float(currentLR)
        adam.update(params.base + shard.lowerBound, grads.base + shard.lowerBound, count: shard.count)
        timer.lap(.optimizer)
        if let gather {
            // Completes in the next step's forward (or at `completeParameterGathers()`).
            gather.start()
            timer.lap(.allgather)
        } else if let counts = shardCounts {
            // MPI's allocations inside the collective are booked with the reducer's, apart from the step loop's own.
            reducer.inCommunicator { comm.allgather(params.base, counts: counts) }
            timer.lap(.allgather)
        }
        timer.endStep()
        gradNorms.add(norm)
    }

    /// [vq] Whether a dead-code restart follows each training forward.
    var restartsCodes: Bool { (model.quantizer?.restartSteps ?? 0) > 0 }

    /// [vq] Dead-code restart after micro-batch `m`'s forward: the global batch's rows are
    /// numbered rank by rank (every rank's share of micro-batch m, from the plan), so every rank
    /// picks the same candidates. A gradient codebook's re-seeded codes start Adam afresh: their
    /// moments (in this rank's slice) are zeroed, as for a new parameter.
    func restartDeadCodes(microBatch m: Int, rows: Int) {
        let micro = config.training.accumulate
        var offset = 0, total = 0
        for r in 0..<comm.size {
            let b = plan.localBatch(r)
            let share = b / micro + (m < b % micro ? 1 : 0)
            if r < comm.rank { offset += share }
            total += share
        }
        model.restartDeadCodes(params.base, workspace, rows: rows, state: modelState.base, rowOffset: offset, globalRows: total,
                               draw: m, codebookReducer: codebookStatistics)
        guard let q = model.quantizer, !q.usesEMA, workspace.restartedCount > 0 else { return }
        for i in 0..<workspace.restartedCount {
            let start = q.codebookOffset + Int(workspace.restartedCodes[i]) * q.dimension
            let lo = max(start, shard.lowerBound), hi = min(start + q.dimension, shard.upperBound)
            guard lo < hi else { continue }
            (adam.m.base + (lo - shard.lowerBound)).update(repeating: 0, count: hi - lo)
            (adam.v.base + (lo - shard.lowerBound)).update(repeating: 0, count: hi - lo)
        }
    }

    /// Rows `first..<first + rows` of this epoch's order into the workspace, with their noise.
    @inline(__always)
    func fillBatch(order: [Int32], from first: Int, rows: Int) {
        let a = model.architecture
        // Dropout masks are keyed by (seed, step, sample id, layer, element): no rank or slot in them.
        workspace.seed = seed
        workspace.step = state.globalStep
        // Bernoulli pixels (data.binarize) are keyed by (seed, epoch, global sample id, pixel).
        let pixelKey = BernoulliPixels.trainKey(config.data.binarize, seed: seed, epoch: state.epoch)
        order.withUnsafeBufferPointer { o in
            if let gather {
                // ZeRO-1 with overlap: the parameter gathers move while the batch is filled (MPI
                // progress on this thread, so the rows are filled here).
                for r in 0..<rows {
                    if r & 31 == 0 { gather.poke() }
                    train.fill(workspace, row: r, local: Int(o[first + r]), architecture: a, binarize: pixelKey)
                }
            } else {
                train.fill(workspace, rows: rows, locals: o.baseAddress! + first, architecture: a, binarize: pixelKey)
            }
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
        grads.base[p + 2] = StopSignal.pending != 0 ? 1 : 0
        reducer.complete()
        if grads.base[p + 2] > 0 { stopAgreed = true }
        return BatchLoss(bce: Double(grads.base[p]), kl: Double(grads.base[p + 1]), rows: plan.globalBatch)
    }

    /// The global L2 norm of the averaged gradient, and the finiteness check: every rank holds
    /// the same sums after the allreduce (sharded: the same total of the slices' sums of
    /// squares), so every rank stops at the same step.
    @inline(__always)
    func gradientNorm() throws -> Double {
        let p = params.count
        // Deterministic mode: every rank holds the whole summed gradient; the norm of all of it
        // does not depend on how the optimizer is sharded.
        let exact = pieces != nil
        var squares = exact ? Numerics.sumOfSquares(grads.base, count: p, blockSums: normBlocks)
                            : Numerics.sumOfSquares(grads.base + shard.lowerBound, count: shard.count, blockSums: normBlocks)
        if shardCounts != nil && !exact {
            normScratch[0] = squares
            reducer.inCommunicator { comm.allreduceSum(normScratch, count: 1) }
            squares = normScratch[0]
        }
        let lossFinite = grads.base[p].isFinite && grads.base[p + 1].isFinite
        if !lossFinite || (!squares.isFinite && (shardCounts != nil && !exact || !Numerics.allFinite(grads.base, count: p))) {
            throw SharedFailure(message: "non-finite \(nonFiniteTensor()) at step \(state.globalStep + 1) (epoch \(state.epoch + 1)); stopped before the update, last checkpoint kept")
        }
        return squares.squareRoot()
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
        if shardCounts != nil && pieces == nil { return "gradient" }  // each rank holds only its slice of the sum
        for slot in model.layout.exported where !Numerics.allFinite(grads.base + slot.offset, count: slot.count) {
            return "gradient of \(slot.name)"
        }
        return "gradient"
    }

    /// ZeRO-1 with overlap: waits for every parameter range still being gathered (nothing to
    /// do otherwise, or when forward already waited for all of them). Every read of the
    /// parameters outside a step's forward comes after it: backward, evaluation, the epoch's
    /// outputs (grids), checkpoints (epoch end, every N steps, a stop signal's), the drift
    /// check and the end of training. Collective (every rank reaches it at the same point), so
    /// no rank leaves requests outstanding on any exit path.
    @inline(__always)
    public func completeParameterGathers() {
        gather?.completeAll()
    }

    /// Debug drift check: every `checksum_every` steps all ranks compare parameter checksums.
    func checkDrift() throws {
        let every = config.runtime.checksumEvery
        guard every > 0, state.globalStep % every == 0 else { return }
        completeParameterGathers()
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
        completeParameterGathers()
        let a = model.architecture
        if a.latentKind == .categorical {  // [gumbel]
            // Bounded for large K (see CategoricalBudget); rank 0 reports progress of long ones.
            let images = CategoricalBudget.images(categories: a.latent, total: test.totalCount)
            let limit = CategoricalBudget.localLimit(images: images, firstIndex: test.firstIndex, count: test.count)
            var lastShown = Clock.now()
            let log = self.log, isWriter = comm.isWriter
            let exact = CategoricalEvaluation.run(model: model, params: params.base, state: modelState.base, shard: test, posteriorMean: false,
                                                  limit: limit, binarize: BernoulliPixels.testKey(config.data.binarize)) { done, total in
                guard isWriter, Clock.now() - lastShown >= 5 else { return }
                lastShown = Clock.now()
                log.info("exact test evaluation (\(a.latent) categories): \(done)/\(total) images of rank 0's share")
            }
            .summed(over: comm)
            lastTestNMI = exact.tally.nmi
            return BatchLoss(bce: exact.sums.bce, kl: exact.sums.kl, rows: exact.sums.count)
        }
        if let d = pieces { return evaluatePieces(d) }
        var total = BatchLoss()
        var start = 0
        let key = GaussianNoise.key(seed: seed, stream: NoiseStream.test, counter: UInt64(state.epoch))
        let pixelKey = BernoulliPixels.testKey(config.data.binarize)
        while start < test.count {
            let rows = min(workspace.capacity, test.count - start)
            test.fill(workspace, rows: rows, locals: nil, firstLocal: start, architecture: a, binarize: pixelKey)
            GaussianNoise.fill(workspace.eps.base, rows: rows, dim: a.latent, ids: workspace.ids, key: key)
            total += model.loss(params.base, workspace, rows: rows, state: modelState.base)
            start += rows
        }
        let sums = comm.sum([total.bce, total.kl, Double(total.rows)])
        return BatchLoss(bce: sums[0], kl: sums[1], rows: Int(sums[2]))
    }

    /// Deterministic mode's test loss: each piece's virtual shard of the test set in chunks of
    /// the workspace's capacity from the shard's start (the same at any world size), its sums
    /// in its `PieceSums` slot, totals added in piece order. It drives the plateau schedule
    /// and the best checkpoint, so it must not depend on the world size either.
    func evaluatePieces(_ d: PieceReduction) -> BatchLoss {
        let a = model.architecture
        let key = GaussianNoise.key(seed: seed, stream: NoiseStream.test, counter: UInt64(state.epoch))
        let sums = d.testSums
        sums.clear()
        var local = 0
        for v in d.pieces {
            let count = VirtualShards.shard(v, of: test.totalCount).count
            var total = BatchLoss()
            var start = 0
            while start < count {
                let rows = min(workspace.capacity, count - start)
                for r in 0..<rows { test.fill(workspace, row: r, local: local + start + r, architecture: a) }
                GaussianNoise.fill(workspace.eps.base, rows: rows, dim: a.latent, ids: workspace.ids, key: key)
                total += model.loss(params.base, workspace, rows: rows, state: modelState.base)
                start += rows
            }
            sums.slot(v)[0] = total.bce
            sums.slot(v)[1] = total.kl
            sums.slot(v)[2] = Double(total.rows)
            local += count
        }
        sums.share()
        return BatchLoss(bce: sums.total(0), kl: sums.total(1), rows: Int(sums.total(2)))
    }

    // MARK: Outputs

    /// Rank 0 hands the epoch to every output; all ranks learn whether that worked.
    func writeOutputs(_ report: EpochReport, rankStepMs: [Double]) throws {
        completeParameterGathers()  // the grids read the parameters
        var epoch = FinishedEpoch(report: report, totalEpochs: config.training.epochs, worldSize: comm.size,
                                  globalBatch: plan.globalBatch, klWeight: Double(klWeight), lr: currentLR,
                                  testNMI: lastTestNMI)
        epoch.gradNormMean = gradNorms.mean
        epoch.gradNormMax = gradNorms.maxValue
        epoch.rankStepMs = rankStepMs
        epoch.optimizerStateMB = optimizerStateMB
        epoch.shardedOptimizer = shardCounts != nil
        epoch.codebook = lastCodebookUsage
        try comm.onWriter {
            for output in outputs { try output.write(epoch) }
        }
    }

    /// Rank 0 writes a checkpoint of the current state; all ranks learn whether it worked.
    /// trainer.json, written last, records the size and CRC32C of the other files.
    @discardableResult
    func saveCheckpoint(testLoss: Double?) throws -> String {
        completeParameterGathers()
        let fullAdam = gatheredAdam()
        try comm.onWriter {
            var s = state
            let name = RunDirectory.checkpointName(step: s.globalStep)
            let isBest = testLoss.map { $0 < s.bestTestLoss } ?? false
            if isBest { s.bestTestLoss = testLoss!; s.bestCheckpoint = name }
            _ = try run.writeCheckpoint(step: s.globalStep, keep: config.output.keepCheckpoints, best: isBest) { dir in
                let written = [
                    "model.safetensors": try Checkpoint.writeModel(model, params: params.base, state: modelState.base, to: dir + "/model.safetensors", extra: [
                        ("epoch", String(s.epoch)), ("step", String(s.globalStep)), ("training_config", config.json.serialized),
                    ]),
                    "optimizer.safetensors": try Checkpoint.writeOptimizer(model, adam: fullAdam ?? adam, to: dir + "/optimizer.safetensors"),
                ]
                let files = try CheckpointIntegrity.record(written)
                try AtomicFile.write(CheckpointIntegrity.sealed(s.json.adding("files", files)), to: dir + "/trainer.json")
            }
            state = s
        }
        // Keep the best-loss bookkeeping identical on every rank.
        _ = fullAdam
        if let t = testLoss, t < state.bestTestLoss {
            state.bestTestLoss = t
            state.bestCheckpoint = RunDirectory.checkpointName(step: state.globalStep)
        }
        return RunDirectory.checkpointName(step: state.globalStep)
    }
}

extension Trainer {
    /// Sharded optimizer: every rank's slice of the moments gathered into one full-size Adam
    /// (on every rank: allgather is collective), so checkpoints keep the unsharded format.
    func gatheredAdam() -> Adam? {
        guard let counts = shardCounts else { return nil }
        let full = Adam(count: params.count, lr: adam.lr, beta1: adam.beta1, beta2: adam.beta2, eps: adam.eps)
        full.step = adam.step
        full.weightDecay = adam.weightDecay
        for (mine, all) in [(adam.m, full.m), (adam.v, full.v)] {
            (all.base + shard.lowerBound).update(from: mine.base, count: shard.count)
            comm.allgather(all.base, counts: counts)
        }
        return full
    }
}

/// Mean and maximum of the global gradient norm over an epoch's steps.
struct GradNormStats {
    var sum = 0.0
    var max = 0.0
    var count = 0

    @inline(__always)
    mutating func add(_ norm: Double) {
        sum += norm
        if norm > max { max = norm }
        count += 1
    }

    var mean: Double? { count > 0 ? sum / Double(count) : nil }
    var maxValue: Double? { count > 0 ? max : nil }
}
