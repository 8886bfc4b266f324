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
public final class Trainer {
    public let comm: Communicator
    public let config: TrainConfig
    public let model: VAE
    public let params: FloatBuffer
    /// Gradients, plus two trailing slots carrying the step's BCE and KL sums through the allreduce.
    public let grads: FloatBuffer
    public let adam: Adam
    public let plan: BatchPlan
    public let localBatch: Int
    public private(set) var state = TrainerState()
    public private(set) var reports: [EpochReport] = []

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
    var events: TensorBoardWriter?
    /// Time spent in each phase of the steps of the epoch in progress.
    public private(set) var times = PhaseTimes()
    /// [gumbel] Test NMI of argmax q(c|x) against the labels from the last `evaluate()` (categorical models only).
    public private(set) var lastTestNMI: Double?

    /// Loads data, builds the model and agrees on everything across ranks. Every failure here
    /// stops all ranks with the failing rank's message.
    public init(config: TrainConfig, comm: Communicator, options: TrainOptions = TrainOptions(), logger: Logger) throws {
        self.comm = comm
        self.config = config
        self.options = options
        self.log = logger
        let rank = comm.rank, world = comm.size
        run = RunDirectory(config.output.dir)
        klWeight = Float(config.training.klWeight)
        seed = UInt64(config.training.seed)
        BLASThreads.set(ThreadPlan.threads(requested: config.runtime.blasThreads, ranksOnHost: comm.localSize))

        // Every rank must run the same experiment on the same data.
        let fingerprint = try comm.collectively { try Fingerprint.of(config: config) }
        let all = comm.allgather(Array(fingerprint.utf8))
        if let other = all.firstIndex(where: { $0 != all[0] }) {
            throw SharedFailure(message: "ranks disagree: rank \(other)'s config or data files differ from rank 0's (fingerprint \(String(decoding: all[other], as: UTF8.self)) vs \(String(decoding: all[0], as: UTF8.self)))")
        }

        let classes = config.model.classes
        let (trainShard, batchPlan) = try comm.collectively { () throws -> (DatasetShard, BatchPlan) in
            var planned: BatchPlan?
            let shard = try DatasetShard.load(images: config.data.trainImages, labels: config.data.trainLabels, classes: classes) { total in
                let p = try BatchPlan(globalBatch: config.training.globalBatch, world: world, samples: total, classes: classes)
                planned = p
                return p.shard(rank)
            }
            return (shard, planned!)
        }
        train = trainShard
        plan = batchPlan
        localBatch = plan.localBatch(rank)
        test = try comm.collectively {
            try DatasetShard.load(images: config.data.testImages, labels: config.data.testLabels, classes: classes) { total in
                (total * rank / world)..<(total * (rank + 1) / world)
            }
        }
        let testDim = test.inputDim
        try comm.collectively {
            guard testDim == trainShard.inputDim else {
                throw DatasetError.shapeMismatch(train: config.data.trainImages, trainDim: trainShard.inputDim, test: config.data.testImages, testDim: testDim)
            }
        }
        var sampler = try comm.collectively {
            try StratifiedSampler(labels: trainShard.labels, classes: classes, localBatch: batchPlan.localBatch(rank),
                                  seed: UInt64(config.training.seed), rank: rank)
        }
        // Same step count everywhere: the plan's, or fewer if some shard's rarest label runs out.
        sampler.steps = Int(comm.allreduceMin(Int64(min(sampler.maxSteps, batchPlan.stepsPerEpoch))))
        self.sampler = sampler

        model = VAE(config.architecture(inputDim: train.inputDim))
        let count = model.parameterCount
        params = FloatBuffer(count: count)
        grads = FloatBuffer(count: count + 2)
        adam = Adam(count: count, lr: Float(config.optimizer.lr), beta1: Float(config.optimizer.beta1),
                    beta2: Float(config.optimizer.beta2), eps: Float(config.optimizer.eps))
        let accumulate = config.training.accumulate
        let smallest = batchPlan.localBatch(world - 1)
        try comm.collectively {
            guard accumulate <= smallest else {
                throw ConfigError.invalidValue(field: "training.accumulate", reason: "(\(accumulate)) exceeds the smallest local batch (\(smallest)): each micro-batch needs at least one sample")
            }
        }
        let microBatch = (localBatch + accumulate - 1) / accumulate
        workspace = VAEWorkspace(architecture: model.architecture,
                                 capacity: max(microBatch, min(config.training.evalBatch, max(test.count, 1))))
        reducer = GradientReducer(comm: comm, buffer: grads.base, parameterCount: count, extraCount: 2,
                                  layerStarts: model.backwardBoundaries, mode: config.runtime.allreduce,
                                  precision: config.runtime.wire,
                                  bucketFloats: max(1, Int(config.runtime.bucketMB * 1_048_576 / 4)))
        state.worldSize = world
        state.seed = config.training.seed
        state.configHash = Fingerprint.hash(config.json.serialized)
        state.dataHash = fingerprint

        // Identical starting point: rank 0 initializes (or loads) and broadcasts. A checkpoint
        // is loaded before the run directory is touched, so a bad one leaves nothing behind.
        let resumeDir = try resolveResume()
        if let dir = resumeDir {
            try restore(from: dir)
        } else {
            let initFrom = options.initFrom
            try comm.onRoot {
                if let file = initFrom {
                    try Checkpoint.readModel(model, into: params.base, from: file)
                } else {
                    model.initialize(params.base, seed: seed)
                }
            }
            comm.broadcast(params.base, count: count, root: 0)
        }
        let resumedStep = resumeDir == nil ? nil : state.globalStep
        let openEpoch = state.stepInEpoch > 0 ? state.epoch + 1 : nil
        try comm.onRoot {
            // A fresh run never mixes its metrics or checkpoints into an earlier run's.
            if resumedStep == nil && run.holdsRun { throw RunDirectoryError.holdsAnotherRun(path: run.path) }
            try run.prepare()
            if let step = resumedStep {
                try run.truncateMetrics(afterStep: step, openEpoch: openEpoch)
            } else {
                try AtomicFile.write(Array(config.json.pretty.utf8), to: run.path + "/config.json")
            }
            if options.tensorboard {
                events = try TensorBoardWriter(directory: run.tensorboard)
                // A resumed run tells TensorBoard to drop what was logged after the checkpoint.
                if let step = resumedStep { try events?.sessionStart(step: step + 1) }
            }
        }
    }

    // MARK: Resume

    /// The checkpoint to resume from, if any: agreed on rank 0, where the run directory lives.
    func resolveResume() throws -> String? {
        if let explicit = options.resumeFrom { return explicit }
        guard options.resume else { return nil }
        var found: String?
        try comm.onRoot {
            guard let latest = run.pointer("latest") else {
                throw CheckpointError.missing(path: run.checkpoints + "/latest (nothing to resume in \(run.path))")
            }
            found = run.checkpoints + "/" + latest
        }
        return found ?? "(rank 0's run directory)"
    }

    /// Loads a checkpoint on rank 0 and broadcasts parameters, moments and state.
    func restore(from dir: String) throws {
        var stateJSON: [UInt8] = []
        try comm.onRoot {
            try Checkpoint.readModel(model, into: params.base, from: dir + "/model.safetensors")
            try Checkpoint.readOptimizer(model, adam: adam, from: dir + "/optimizer.safetensors")
            let path = dir + "/trainer.json"
            let text: [UInt8]
            do { text = try FileBytes.read(path) } catch { throw CheckpointError.missing(path: path) }
            guard let j = try? JSON.parse(bytes: text) else { throw CheckpointError.badState(path: path, reason: "trainer.json is not valid JSON") }
            let s = try TrainerState(json: j, path: dir)
            guard s.seed == config.training.seed else {
                throw CheckpointError.badState(path: dir, reason: "it was trained with seed \(s.seed), the config says \(config.training.seed)")
            }
            stateJSON = Array(s.json.serialized.utf8)
        }
        comm.broadcast(params.base, count: params.count, root: 0)
        comm.broadcast(adam.m.base, count: adam.m.count, root: 0)
        comm.broadcast(adam.v.base, count: adam.v.count, root: 0)
        let shared = comm.allgather(stateJSON)[0]
        var s = try TrainerState(json: try JSON.parse(bytes: shared), path: dir)
        adam.step = s.globalStep
        if s.worldSize != comm.size && s.stepInEpoch > 0 {
            // Batches of an interrupted epoch depend on the world size: start the next epoch cleanly.
            if comm.isRoot {
                log.notice("checkpoint was written by \(s.worldSize) ranks mid-epoch; resuming on \(comm.size) ranks from the start of epoch \(s.epoch + 2)")
            }
            s.epoch += 1
            s.stepInEpoch = 0
            s.epochBCE = 0; s.epochKL = 0; s.epochSamples = 0
        }
        s.worldSize = comm.size
        s.configHash = state.configHash
        s.dataHash = state.dataHash
        state = s
        if comm.isRoot { log.notice("resumed from \(dir) at epoch \(state.epoch + 1), step \(state.globalStep)") }
    }

    // MARK: Training

    /// Trains until the configured epochs (or max_steps) are done.
    public func fit() throws {
        let steps = sampler.steps
        let maxSteps = config.training.maxSteps
        if comm.isRoot {
            log.info("model: \(model.trainableCount) parameters, \(model.trainingFlopsPerSample / 1000) kFLOP per sample per step")
            log.info("world \(comm.size): global batch \(plan.globalBatch), local batch \(localBatch) on rank 0, \(steps) steps per epoch\(steps < plan.stepsPerEpoch ? " (of \(plan.stepsPerEpoch): the rarest label of a shard limits it)" : ""), BLAS threads \(BLASThreads.current)")
        }
        while state.epoch < config.training.epochs {
            if maxSteps > 0 && state.globalStep >= maxSteps { break }
            let started = Clock.now()
            let order = sampler.order(epoch: state.epoch)
            let firstStep = state.stepInEpoch
            times = PhaseTimes()
            let live = comm.isRoot && options.printEpochs && options.liveProgress && isatty(STDOUT_FILENO) == 1
            var lastShown = started
            while state.stepInEpoch < steps && !(maxSteps > 0 && state.globalStep >= maxSteps) {
                let loss = try step(order: order)
                if live && Clock.now() - lastShown > 0.25 {
                    lastShown = Clock.now()
                    showProgress(steps: steps, firstStep: firstStep, started: started, next: loss)
                }
                state.globalStep += 1
                state.stepInEpoch += 1
                state.epochBCE += loss.bce
                state.epochKL += loss.kl
                state.epochSamples += loss.rows
                try checkDrift()
                if config.output.checkpointEverySteps > 0 && state.globalStep % config.output.checkpointEverySteps == 0 && state.stepInEpoch < steps {
                    try saveCheckpoint(testLoss: nil)
                }
            }
            let completed = state.stepInEpoch == steps
            var evalStart = Clock.now()
            let testLoss = evaluate()
            times.eval += Clock.lap(&evalStart)
            let trainLoss = BatchLoss(bce: state.epochBCE, kl: state.epochKL, rows: state.epochSamples)
            let samples = (state.stepInEpoch - firstStep) * plan.globalBatch
            let report = EpochReport(epoch: state.epoch + 1, step: state.globalStep, train: trainLoss, test: testLoss,
                                     samplesPerSecond: 0, seconds: 0, times: times)
            if completed {
                state.epoch += 1
                state.stepInEpoch = 0
                state.epochBCE = 0; state.epochKL = 0; state.epochSamples = 0
            }
            let mean = testLoss.means(beta: Double(klWeight)).loss
            try writeEpochOutputs(report: report, testMean: mean)
            var finished = report
            finished.seconds = Clock.now() - started
            finished.samplesPerSecond = Double(samples) / max(finished.seconds, 1e-9)
            reports.append(finished)
            try comm.onRoot {
                try run.appendMetrics(metricsLine(finished))
                try LearningCurves.write(metricsPath: run.metrics, to: run.curves)
                try logEvents(finished)
            }
            if comm.isRoot && options.printEpochs {
                // On a terminal, replace the live progress line.
                if options.liveProgress && isatty(STDOUT_FILENO) == 1 { print("\r\u{1B}[K", terminator: "") }
                print(consoleLine(finished))
                fflush(stdout)
            }
            if !completed { break }
        }
    }

    /// One synchronized optimizer step on this rank's next local batch (in `accumulate`
    /// micro-batches): forward and backward, gradients summed across ranks (in buckets that
    /// start while backward still runs, in overlap mode), then the same Adam update everywhere.
    @inline(__always)
    func step(order: [Int32]) throws -> BatchLoss {
        let a = model.architecture
        let b = localBatch
        let micro = config.training.accumulate
        let scale = 1 / Float(plan.globalBatch)
        let key = GaussianNoise.key(seed: seed, stream: NoiseStream.train, counter: UInt64(state.globalStep))
        let poisoned = options.poisonGradient.map { $0.rank == comm.rank && $0.step == state.globalStep } ?? false
        var bce = 0.0, kl = 0.0
        var first = state.stepInEpoch * b
        let allocationsBefore = AllocationCounter.count
        let communicatorBefore = reducer.communicatorAllocations
        let blasBefore = BLASAllocations.count
        var t = Clock.now()
        workspace.temperature = Temperature.at(step: state.globalStep, config: config)  // [gumbel]
        for m in 0..<micro {
            let rows = b / micro + (m < b % micro ? 1 : 0)
            order.withUnsafeBufferPointer { o in
                for r in 0..<rows { train.fill(workspace, row: r, local: Int(o[first + r]), architecture: a) }
            }
            GaussianNoise.fill(workspace.eps.base, rows: rows, dim: a.latent, ids: workspace.ids, key: key)
            times.data += Clock.lap(&t)
            let loss = model.forwardForTraining(params.base, workspace, rows: rows, scale: scale)
            if poisoned && m == 0 { workspace.logits.base[0] = .nan }  // debug: --poison-gradient
            times.forward += Clock.lap(&t)
            let last = m == micro - 1
            if last { reducer.begin() }
            model.backward(params.base, grads.base, workspace, rows: rows, scale: scale, beta: klWeight,
                           accumulate: m > 0) { offset in if last { reducer.finished(upTo: offset) } }
            times.backward += Clock.lap(&t)
            bce += loss.bce
            kl += loss.kl
            first += rows
        }
        let p = params.count
        grads.base[p] = Float(bce)
        grads.base[p + 1] = Float(kl)
        reducer.complete()
        times.allreduce += Clock.lap(&t)
        // Every rank holds the same sums now, so every rank takes this branch at the same step.
        if !Numerics.allFinite(grads.base, count: p + 2) {
            throw SharedFailure(message: "non-finite \(nonFiniteTensor()) at step \(state.globalStep + 1) (epoch \(state.epoch + 1)); stopped before the update, last checkpoint kept")
        }
        adam.update(params.base, grads.base, count: p)
        times.optimizer += Clock.lap(&t)
        times.steps += 1
        times.allocations &+= AllocationCounter.count &- allocationsBefore
        times.communicatorAllocations &+= reducer.communicatorAllocations &- communicatorBefore
        times.blasAllocations &+= BLASAllocations.count &- blasBefore
        return BatchLoss(bce: Double(grads.base[p]), kl: Double(grads.base[p + 1]), rows: plan.globalBatch)
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

    /// The live line on a terminal: step, running loss, throughput, time left in the epoch.
    func showProgress(steps: Int, firstStep: Int, started: Double, next: BatchLoss) {
        let done = state.stepInEpoch - firstStep
        let elapsed = Clock.now() - started
        let rate = Double(done * plan.globalBatch) / max(elapsed, 1e-9)
        let eta = Double(steps - state.stepInEpoch) * elapsed / Double(max(done, 1))
        let loss = (state.epochBCE + Double(klWeight) * state.epochKL) / Double(max(state.epochSamples, 1))
        print("\r\u{1B}[Kepoch \(state.epoch + 1)/\(config.training.epochs)  step \(state.stepInEpoch)/\(steps)  "
              + "loss \(fmt(loss))  \(Int(rate.rounded())) samples/s  ETA \(fmt(eta, 1))s", terminator: "")
        fflush(stdout)
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

    // MARK: Outputs (rank 0)

    func writeEpochOutputs(report: EpochReport, testMean: Double) throws {
        let every = config.output.gridEvery
        try comm.onRoot {
            if every > 0 && (report.epoch % every == 0 || report.epoch == config.training.epochs) {
                let grid = Generator(model: model, params: params.base).labelGrid(cols: 10, seed: seed)
                let layout = ImageGrid(rows: model.architecture.classes, cols: 10)
                let path = run.grids + "/epoch-\(pad(report.epoch, 3)).png"
                try layout.writePNG(grid, to: path)
                try events?.image("grid/generation", png: try FileBytes.read(path), width: layout.width, height: layout.height,
                                  channels: 1, step: report.step)
                // Fixed test images (rank 0's shard) beside their reconstructions.
                try writeReconstructionGrid(model: model, params: params.base, shard: test, count: min(20, test.count),
                                            to: run.reconstructions + "/epoch-\(pad(report.epoch, 3)).png")
            }
        }
        try saveCheckpoint(testLoss: testMean)
    }

    /// Rank 0 writes a checkpoint of the current state; all ranks learn whether it worked.
    func saveCheckpoint(testLoss: Double?) throws {
        try comm.onRoot {
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

    /// TensorBoard scalars for one epoch, against the global step.
    func logEvents(_ r: EpochReport) throws {
        guard let tb = events else { return }
        let beta = Double(klWeight)
        let train = r.train.means(beta: beta), test = r.test.means(beta: beta)
        try tb.scalar("loss/train", train.loss, step: r.step)
        try tb.scalar("loss/test", test.loss, step: r.step)
        try tb.scalar("loss/train_bce", train.bce, step: r.step)
        try tb.scalar("loss/train_kl", train.kl, step: r.step)
        try tb.scalar("throughput/samples_per_s", r.samplesPerSecond, step: r.step)
        try tb.scalar("optimizer/lr", config.optimizer.lr, step: r.step)
        try tb.flush()
    }

    func metricsLine(_ r: EpochReport) -> JSON {
        let beta = Double(klWeight)
        let train = r.train.means(beta: beta), test = r.test.means(beta: beta)
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
            ("world_size", .number(Double(comm.size))),
            ("global_batch", .number(Double(plan.globalBatch))),
            ("lr", .number(config.optimizer.lr)),
            ("kl_weight", .number(beta)),
        ] + (lastTestNMI.map { [("test_nmi", JSON.number($0))] } ?? []) + [  // [gumbel]
            ("step_ms", r.times.json),
        ] + r.times.allocationsJSON + [
            ("time", .number((Clock.wall() * 1000).rounded() / 1000)),
        ])
    }

    func consoleLine(_ r: EpochReport) -> String {
        let beta = Double(klWeight)
        let train = r.train.means(beta: beta), test = r.test.means(beta: beta)
        return "epoch \(pad(r.epoch, 3, " "))/\(config.training.epochs)  step \(pad(r.step, 6, " "))  "
            + "train \(fmt(train.loss)) (bce \(fmt(train.bce)), kl \(fmt(train.kl)))  "
            + "test \(fmt(test.loss))  " + (lastTestNMI.map { "nmi \(fmt($0))  " } ?? "")  // [gumbel]
            + "\(Int(r.samplesPerSecond.rounded())) samples/s  \(fmt(r.seconds, 2))s"
    }
}

func pad(_ n: Int, _ width: Int, _ fill: Character = "0") -> String {
    let s = String(n)
    return String(repeating: fill, count: max(0, width - s.count)) + s
}

func fmt(_ x: Double, _ decimals: Int = 3) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let v = (abs(x) * scale).rounded()
    let whole = Int(v / scale)
    let frac = Int(v - Double(whole) * scale)
    let f = String(frac)
    return (x < 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: max(0, decimals - f.count)) + f
}
