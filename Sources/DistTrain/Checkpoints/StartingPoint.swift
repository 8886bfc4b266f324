import DistTrainIO
import Logging
import Models

/// Where a run starts: fresh weights from the seed, weights from `--init-from`, or a
/// checkpoint (`--resume`, `--resume-from`). Rank 0 reads files, every rank gets the same
/// parameters, optimizer moments and trainer state by broadcast.
struct StartingPoint {
    let config: TrainConfig
    let comm: Communicator
    let options: TrainOptions
    let log: Logger
    let run: RunDirectory

    /// The checkpoint to resume from, if any: agreed on rank 0, where the run directory lives.
    ///
    /// Rank 0 verifies the checksums in trainer.json first. `--resume-from` a damaged
    /// checkpoint refuses; `--resume` with a damaged latest checkpoint says which file is
    /// damaged and falls back to the newest intact checkpoint, with a warning naming its step.
    func checkpointToResume() throws -> String? {
        guard options.resume || options.resumeFrom != nil else { return nil }
        var found: String?
        try comm.onWriter {
            if let explicit = options.resumeFrom {
                found = explicit
                guard FileBytes.isDirectory(explicit),
                      CheckpointIntegrity.dataFiles.contains(where: { FileBytes.exists(explicit + "/" + $0) }) || FileBytes.exists(explicit + "/trainer.json")
                else { throw CheckpointError.missing(path: explicit) }
                try check(explicit, verdict: CheckpointIntegrity.verify(directory: explicit))
                return
            }
            guard let latest = run.pointer("latest") else {
                throw CheckpointError.missing(path: run.checkpoints + "/latest (nothing to resume in \(run.path))")
            }
            let older = run.checkpointNames().reversed().filter { $0 != latest && $0 < latest }
            var firstDamage: String?
            for name in [latest] + older {
                let dir = run.checkpoints + "/" + name
                let verdict = CheckpointIntegrity.verify(directory: dir)
                if case let .damaged(file, problem) = verdict {
                    log.warning("checkpoint \(name) is damaged: \(file): \(problem)")
                    if firstDamage == nil { firstDamage = "\(file): \(problem)" }
                    continue
                }
                try check(dir, verdict: verdict)
                if name != latest {
                    log.warning("resuming from \(name), the newest intact checkpoint (step \(RunDirectory.step(ofCheckpoint: name) ?? 0)), instead of the damaged latest \(latest)")
                }
                found = dir
                return
            }
            throw CheckpointError.damaged(path: run.checkpoints + "/" + latest,
                                          reason: "\(firstDamage ?? "damaged"); no intact checkpoint to fall back to in \(run.checkpoints)")
        }
        return found ?? "(rank 0's run directory)"
    }

    /// Refuses a damaged checkpoint; warns about one without checksums.
    private func check(_ dir: String, verdict: CheckpointIntegrity.Verdict) throws {
        switch verdict {
        case let .damaged(file, problem):
            throw CheckpointError.damaged(path: dir, reason: "\(file): \(problem)")
        case .unchecked:
            log.warning("checkpoint \(dir) records no checksums (written by an older disttrain): loading it unverified")
        case .intact: break
        }
    }

    /// Fresh or `--init-from` weights on rank 0, broadcast to all.
    func initialize(model: VAE, params: FloatBuffer, state: FloatBuffer) throws {
        let initFrom = options.initFrom
        let seed = UInt64(config.training.seed)
        try comm.onWriter {
            if let file = initFrom {
                try Checkpoint.readModel(model, into: params.base, state: state.base, from: file)
            } else {
                model.initialize(params.base, seed: seed, state: state.base)
            }
        }
        comm.broadcast(params.base, count: params.count, root: 0)
        comm.broadcast(state.base, count: state.count, root: 0)
    }

    /// Loads a checkpoint on rank 0 and broadcasts parameters, moments and state; returns the
    /// state to continue from (`fresh` supplies this run's world size and hashes).
    /// `batchesDependOnWorld` false (deterministic mode): an interrupted epoch continues on any
    /// number of ranks.
    func restore(from dir: String, model: VAE, params: FloatBuffer, state: FloatBuffer, adam: Adam,
                 fresh: TrainerState, batchesDependOnWorld: Bool = true) throws -> TrainerState {
        var stateJSON: [UInt8] = []
        let seed = config.training.seed
        try comm.onWriter {
            try Checkpoint.readModel(model, into: params.base, state: state.base, from: dir + "/model.safetensors")
            try Checkpoint.readOptimizer(model, adam: adam, from: dir + "/optimizer.safetensors")
            let path = dir + "/trainer.json"
            let text: [UInt8]
            do { text = try FileBytes.read(path, limit: 16 << 20) } catch { throw CheckpointError.missing(path: path) }
            guard let j = try? JSON.parse(bytes: text) else { throw CheckpointError.badState(path: path, reason: "trainer.json is not valid JSON") }
            let s = try TrainerState(json: j, path: dir)
            guard s.seed == seed else {
                throw CheckpointError.badState(path: dir, reason: "it was trained with seed \(s.seed), the config says \(seed)")
            }
            stateJSON = Array(s.json.serialized.utf8)
        }
        comm.broadcast(params.base, count: params.count, root: 0)
        comm.broadcast(state.base, count: state.count, root: 0)
        comm.broadcast(adam.m.base, count: adam.m.count, root: 0)
        comm.broadcast(adam.v.base, count: adam.v.count, root: 0)
        let shared = comm.allgather(stateJSON)[0]
        var s = try TrainerState(json: try JSON.parse(bytes: shared), path: dir)
        adam.step = s.globalStep
        if let change = s.midEpochChange(to: fresh, batchesDependOnWorld: batchesDependOnWorld) {
            // Batches of an interrupted epoch depend on the world size and global batch: start the next epoch cleanly.
            if comm.isWriter {
                log.notice("checkpoint was written mid-epoch \(change); resuming from the start of epoch \(s.epoch + 2)")
            }
            s.finishEpoch()
        }
        s.worldSize = comm.size
        s.globalBatch = fresh.globalBatch
        s.configHash = fresh.configHash
        s.dataHash = fresh.dataHash
        if comm.isWriter { log.notice("resumed from \(dir) at epoch \(s.epoch + 1), step \(s.globalStep)") }
        return s
    }
}
