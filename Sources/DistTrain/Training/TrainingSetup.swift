import DistTrainIO
import Logging
import Models

/// Everything a training run holds before its first step: data shards, the batch plan and
/// sampler, the model with its flat buffers and workspace, the optimizer, the gradient
/// reducer, and the state to start from (fresh, `--init-from` or a checkpoint).
///
/// Building it is the part of training where ranks can disagree (configs, data files,
/// checkpoints), so every failure here stops all ranks with the failing rank's message, and
/// nothing is written to the run directory until the starting point is known to be good.
struct TrainingSetup {
    let train: DatasetShard
    let test: DatasetShard
    let plan: BatchPlan
    let sampler: any BatchSampler
    /// This rank's rows of every global batch.
    let localBatch: Int
    /// Deterministic mode's pieces and exact sums (nil in normal mode).
    let pieces: PieceReduction?
    let model: VAE
    /// [parameterCount] the one flat parameter buffer.
    let params: FloatBuffer
    /// [stateCount] BatchNorm running statistics (not trained, not reduced, saved with the model).
    let state: FloatBuffer
    /// SyncBN's cross-rank sums (nil: per-rank statistics, or no ranks to sum over).
    let batchStatistics: BatchStatisticsReducer?
    let codebookStatistics: BatchStatisticsReducer?
    /// [parameterCount + 3] gradients, then the step's BCE and KL sums and the stop-signal
    /// count riding the allreduce.
    let grads: FloatBuffer
    /// Adam over `shard` (all parameters unless `runtime.shard_optimizer`).
    let adam: Adam
    let shard: Range<Int>
    let shardCounts: [Int]?
    let schedule: LRSchedule
    let workspace: VAEWorkspace
    let reducer: GradientReducer
    let trainerState: TrainerState
    let run: RunDirectory
    /// TensorBoard event file (rank 0, when enabled).
    let events: TensorBoardWriter?
    /// Rank 0's hold on RUN/.lock.
    let lock: RunLock?

    init(config: TrainConfig, comm: Communicator, options: TrainOptions, log: Logger) throws {
        let rank = comm.rank, world = comm.size, classes = config.model.classes
        run = RunDirectory(config.output.dir)
        let deterministic = config.runtime.deterministic
        // Deterministic mode with OpenBLAS's threads: one thread (OpenBLAS gives other bits for the
        // same sgemm at 2 threads). The pool's products and passes give the same bits on any count.
        let threads = ThreadPlan.threads(requested: config.runtime.blasThreads, ranksOnHost: comm.localSize)
        RankThreads.set(deterministic && config.runtime.threading == .openblas ? 1 : threads, mode: config.runtime.threading)
        // Idle pool workers spin briefly between passes only when this host's ranks and their
        // threads fit its cores: then nobody else needs the core a worker spins on.
        WorkerPool.shared.spinsBeforeSleep = ThreadPlan.fitsCores(threads: RankThreads.count, ranksOnHost: comm.localSize) ? WorkerPool.idleSpins : 0
        SparseInput.enabled = config.runtime.sparseInputs
        // A world size deterministic mode cannot split the data over is refused before anything is read.
        if deterministic {
            try comm.collectively {
                guard VirtualShards.count % world == 0 else { throw DeterminismError.worldSize(world) }
                if config.model.codebookEMA > 0 {
                    throw DeterminismError.notCovered(field: "model.codebook_ema", why: "its code counts and sums are added across ranks in floating point")
                }
                if config.model.codebookRestartSteps > 0 && config.model.latentKind == .vectorQuantized {
                    throw DeterminismError.notCovered(field: "model.codebook_restart_steps", why: "deterministic mode's piece step does not restart dead codes")
                }
            }
        }

        // Same starting point everywhere: the resume and init paths below are collective.
        try comm.agree(on: options.agreementItems, what: "how to start")

        // Every rank must run the same experiment on the same data. Headers (and raw files'
        // sizes) first: a bad or endless data file is refused in milliseconds, before the
        // fingerprint streams every byte of it.
        let fingerprint = try comm.collectively { () throws -> String in
            try config.checkPaths()
            _ = try DatasetShard.recordCount(images: config.data.trainImages, labels: config.data.trainLabels)
            _ = try DatasetShard.recordCount(images: config.data.testImages, labels: config.data.testLabels)
            return try Fingerprint.of(config: config)
        }
        let all = comm.allgather(Array(fingerprint.utf8))
        if let other = all.firstIndex(where: { $0 != all[0] }) {
            throw SharedFailure(message: "ranks disagree: rank \(other)'s config or data files differ from rank 0's (fingerprint \(String(decoding: all[other], as: UTF8.self)) vs \(String(decoding: all[0], as: UTF8.self)))")
        }

        // The plan needs the record count, the shard needs the plan.
        // Deterministic mode: rank r loads its virtual shards (`VirtualShards`) of both sets.
        let (train, plan, shards) = try comm.collectively { () throws -> (DatasetShard, BatchPlan, VirtualShards?) in
            let total = try DatasetShard.recordCount(images: config.data.trainImages, labels: config.data.trainLabels)
            let shards = deterministic ? try VirtualShards(globalBatch: config.training.globalBatch, world: world,
                                                           samples: total, classes: classes) : nil
            let plan = try BatchPlan(globalBatch: config.training.globalBatch, world: world, samples: total, classes: classes)
            let shard = try DatasetShard.load(images: config.data.trainImages, labels: config.data.trainLabels,
                                              classes: classes) { total in shards?.records(rank: rank, of: total) ?? plan.shard(rank) }
            return (shard, plan, shards)
        }
        let test = try comm.collectively {
            try DatasetShard.load(images: config.data.testImages, labels: config.data.testLabels, classes: classes) { total in
                shards?.records(rank: rank, of: total) ?? (total * rank / world)..<(total * (rank + 1) / world)
            }
        }
        try comm.collectively {
            guard test.inputDim == train.inputDim else {
                throw DatasetError.shapeMismatch(train: config.data.trainImages, trainDim: train.inputDim,
                                                 test: config.data.testImages, testDim: test.inputDim)
            }
        }
        let steps: Int
        if let shards {
            var pieceSampler = try comm.collectively {
                try PieceSampler(labels: train.labels, classes: classes, shards: shards, rank: rank, seed: UInt64(config.training.seed))
            }
            // The same for every world size: the minimum over all 24 pieces.
            pieceSampler.steps = Int(comm.allreduceMin(Int64(pieceSampler.maxSteps)))
            steps = pieceSampler.steps
            sampler = pieceSampler
            localBatch = shards.localBatch(rank: rank)
        } else {
            var stratified = try comm.collectively {
                try StratifiedSampler(labels: train.labels, classes: classes, localBatch: plan.localBatch(rank),
                                      seed: UInt64(config.training.seed), rank: rank)
            }
            // Same step count everywhere: the plan's, or fewer if some shard's rarest label runs out.
            stratified.steps = Int(comm.allreduceMin(Int64(min(stratified.maxSteps, plan.stepsPerEpoch))))
            steps = stratified.steps
            sampler = stratified
            localBatch = plan.localBatch(rank)
        }
        self.train = train
        self.test = test
        self.plan = plan
        schedule = try comm.collectively { try LRSchedule(config: config, stepsPerEpoch: steps) }

        let architecture = config.architecture(rows: train.rows, cols: train.cols)
        try comm.collectively {
            if let p = ArchitectureCheck.problem(architecture) { throw ConfigError.invalidValue(field: p.field, reason: p.reason) }
        }
        // Refuse a model this rank cannot hold before allocating any of it.
        // Deterministic mode runs one piece at a time and evaluates in chunks that do not depend on the world size.
        let testRows = shards.map { _ in VirtualShards.shard(0, of: test.totalCount).count + 1 } ?? max(test.count, 1)
        let accumulateRows = shards?.largestPiece
            ?? (plan.localBatch(rank) + config.training.accumulate - 1) / max(config.training.accumulate, 1)
        try comm.collectively {
            try MemoryBudget.check(architecture, rows: max(accumulateRows, min(config.training.evalBatch, testRows)),
                                   training: true, ranksOnHost: comm.localSize, what: "model (model.encoder_hidden, model.decoder_hidden, model.latent)")
        }
        let model = VAE(architecture)
        let count = model.parameterCount
        self.model = model
        params = FloatBuffer(count: count)
        state = FloatBuffer(count: max(model.stateCount, 1))
        model.initializeState(state.base)
        grads = FloatBuffer(count: count + 3)
        let shardCounts = config.runtime.shardOptimizer ? ShardPlan.counts(parameters: count, ranks: world) : nil
        let shardStart = shardCounts.map { $0[..<rank].reduce(0, +) } ?? 0
        let shard = shardStart..<(shardStart + (shardCounts?[rank] ?? count))
        self.shardCounts = shardCounts
        self.shard = shard
        func makeAdam(_ n: Int) -> Adam {
            let a = Adam(count: n, lr: Float(config.optimizer.lr), beta1: Float(config.optimizer.beta1),
                         beta2: Float(config.optimizer.beta2), eps: Float(config.optimizer.eps))
            a.weightDecay = Float(config.optimizer.weightDecay)
            return a
        }
        let adam = makeAdam(shard.count)
        self.adam = adam
        let accumulate = config.training.accumulate
        let smallest = plan.localBatch(world - 1)
        try comm.collectively {
            guard accumulate <= smallest else {
                throw ConfigError.invalidValue(field: "training.accumulate", reason: "(\(accumulate)) exceeds the smallest local batch (\(smallest)): each micro-batch needs at least one sample")
            }
        }
        let microBatch = shards?.largestPiece ?? (plan.localBatch(rank) + accumulate - 1) / accumulate
        workspace = VAEWorkspace(model: model,
                                 capacity: max(microBatch, min(config.training.evalBatch, testRows)))
        reducer = GradientReducer(comm: comm, buffer: grads.base, parameterCount: count, extraCount: 3,
                                  layerStarts: model.backwardBoundaries, mode: config.runtime.allreduce,
                                  precision: config.runtime.wire,
                                  bucketFloats: max(1, Int(min(config.runtime.bucketMB * 1_048_576 / 4, Double(count + 2)))),
                                  shardCounts: shardCounts)
        let reducer = self.reducer
        let pieces = shards.map { PieceReduction(shards: $0, rank: rank, model: model, comm: comm, counter: reducer) }
        self.pieces = pieces
        if let pieces {
            batchStatistics = pieces.statistics
        } else {
            batchStatistics = config.runtime.batchnorm == .sync && world > 1 && model.stateCount > 0
                ? SyncBatchStatistics(comm: comm, countingWith: reducer) : nil
        }
        // [vq] An EMA codebook's statistics and a restart's counts and candidates are always summed over
        // ranks: every rank keeps the same codebook.
        codebookStatistics = (model.quantizer.map { $0.usesEMA || $0.restartSteps > 0 } ?? false) && world > 1 ? SyncBatchStatistics(comm: comm, countingWith: reducer) : nil
        var fresh = TrainerState()
        fresh.worldSize = world
        fresh.globalBatch = plan.globalBatch
        fresh.seed = config.training.seed
        fresh.configHash = Fingerprint.hash(config.json.serialized)
        fresh.dataHash = fingerprint

        // One job per run directory: rank 0 locks an existing one before reading a checkpoint
        // from it (a new one is locked as soon as it is created, below).
        var lock: RunLock?
        let run = self.run
        try comm.onWriter {
            if FileBytes.isDirectory(run.path) { lock = try RunLock.acquire(directory: run.path, log: log) }
        }

        // Identical starting point: rank 0 initializes (or loads) and broadcasts. A checkpoint
        // is loaded before the run directory is touched, so a bad one leaves nothing behind.
        let start = StartingPoint(config: config, comm: comm, options: options, log: log, run: run)
        let resumeDir = try start.checkpointToResume()
        if let dir = resumeDir {
            if shardCounts != nil {
                // Checkpoints hold the full moments: restore them whole, keep this rank's slice.
                let full = makeAdam(count)
                trainerState = try start.restore(from: dir, model: model, params: params, state: state, adam: full, fresh: fresh,
                                                 batchesDependOnWorld: !deterministic)
                adam.m.base.update(from: full.m.base + shard.lowerBound, count: shard.count)
                adam.v.base.update(from: full.v.base + shard.lowerBound, count: shard.count)
                adam.step = full.step
            } else {
                trainerState = try start.restore(from: dir, model: model, params: params, state: state, adam: adam, fresh: fresh,
                                                 batchesDependOnWorld: !deterministic)
            }
        } else {
            try start.initialize(model: model, params: params, state: state)
            trainerState = fresh
        }
        let resumedStep = resumeDir == nil ? nil : trainerState.globalStep
        let openEpoch = trainerState.stepInEpoch > 0 ? trainerState.epoch + 1 : nil
        let startState = trainerState
        var events: TensorBoardWriter?
        try comm.onWriter {
            // A fresh run never mixes its metrics or checkpoints into an earlier run's.
            if resumedStep == nil && run.holdsRun { throw RunDirectoryError.holdsAnotherRun(path: run.path) }
            try run.prepare()
            if lock == nil { lock = try RunLock.acquire(directory: run.path, log: log) }
            // Only once this job holds the lock: the leftovers cannot be a live job's.
            let stale = run.removeStaleTemporaries()
            if !stale.isEmpty { log.notice("removed \(stale.count) temporary file(s) left by an interrupted run, e.g. \(stale[0])") }
            if let step = resumedStep {
                try run.truncateMetrics(afterStep: step, openEpoch: openEpoch)
                try run.restoreBestPointer(state: startState)
            } else {
                try AtomicFile.write(Array(config.json.pretty.utf8), to: run.path + "/config.json")
            }
            if options.tensorboard {
                events = try TensorBoardWriter(directory: run.tensorboard)
                // A resumed run tells TensorBoard to drop what was logged after the checkpoint.
                if let step = resumedStep { try events?.sessionStart(step: step + 1) }
            }
        }
        self.events = events
        self.lock = lock
    }
}
