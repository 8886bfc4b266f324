import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Where training stands: everything besides the buffers that a resume needs. Sampling order
/// and noise are pure functions of (seed, epoch, rank, step), so no generator state exists
/// beyond these counters.
public struct TrainerState: Equatable, Sendable {
    /// Epoch in progress (0-based) and steps of it already taken.
    public var epoch = 0
    public var stepInEpoch = 0
    /// Optimizer steps taken in total.
    public var globalStep = 0
    public var worldSize = 1
    /// Samples per step summed over ranks (0: not recorded, checkpoints before it was).
    public var globalBatch = 0
    public var seed = 0
    /// Running sums of the epoch in progress, so a resumed epoch reports the same train loss.
    public var epochBCE = 0.0
    public var epochKL = 0.0
    public var epochSamples = 0
    /// Best test loss so far and the checkpoint that holds it.
    public var bestTestLoss = Double.infinity
    public var bestCheckpoint = ""
    public var configHash = ""
    public var dataHash = ""
    /// Reduce-on-plateau's state (`optimizer.schedule` "plateau"; untouched otherwise).
    public var plateau = PlateauState()

    public init() {}

    /// Counts one finished optimizer step and adds its loss sums to the epoch's.
    public mutating func recordStep(_ loss: BatchLoss) {
        globalStep += 1
        stepInEpoch += 1
        epochBCE += loss.bce
        epochKL += loss.kl
        epochSamples += loss.rows
    }

    /// The epoch's sums so far, as one loss.
    public var epochLoss: BatchLoss { BatchLoss(bce: epochBCE, kl: epochKL, rows: epochSamples) }

    /// Moves to the start of the next epoch (its step count and loss sums back to zero).
    public mutating func finishEpoch() {
        epoch += 1
        stepInEpoch = 0
        epochBCE = 0
        epochKL = 0
        epochSamples = 0
    }

    public var json: JSON {
        .object([
            ("format", "disttrain.trainer.v1"),
            ("epoch", .number(Double(epoch))),
            ("step_in_epoch", .number(Double(stepInEpoch))),
            ("global_step", .number(Double(globalStep))),
            ("world_size", .number(Double(worldSize))),
            ("global_batch", .number(Double(globalBatch))),
            ("rng", .object([
                ("kind", "counter-based: sampler order from (seed, epoch, rank), noise from (seed, step, sample id)"),
                ("seed", .number(Double(seed))),
                ("sampler_epoch", .number(Double(epoch))),
                ("noise_counter", .number(Double(globalStep))),
            ])),
            ("epoch_sums", .object([
                ("bce", .number(epochBCE)), ("kl", .number(epochKL)), ("samples", .number(Double(epochSamples))),
            ])),
            ("best", .object([
                ("test_loss", bestTestLoss.isFinite ? .number(bestTestLoss) : .null),
                ("checkpoint", .string(bestCheckpoint)),
            ])),
            ("config_hash", .string(configHash)),
            ("data_hash", .string(dataHash)),
            ("lr_plateau", plateau.json),
        ])
    }

    public init(json: JSON, path: String) throws {
        func int(_ v: JSON?, _ name: String) throws -> Int {
            guard case let .number(d)? = v, d >= 0, let i = Int(exactly: d), i < 1 << 53 else {
                throw CheckpointError.badState(path: path, reason: "trainer.json: \"\(name)\" missing or not a non-negative integer below 2^53")
            }
            return i
        }
        func num(_ v: JSON?, _ name: String) throws -> Double {
            guard case let .number(d)? = v else { throw CheckpointError.badState(path: path, reason: "trainer.json: \"\(name)\" missing") }
            return d
        }
        guard json["format"] == .string("disttrain.trainer.v1") else {
            throw CheckpointError.badState(path: path, reason: "trainer.json: not a disttrain trainer state")
        }
        epoch = try int(json["epoch"], "epoch")
        stepInEpoch = try int(json["step_in_epoch"], "step_in_epoch")
        globalStep = try int(json["global_step"], "global_step")
        worldSize = try int(json["world_size"], "world_size")
        if json["global_batch"] != nil { globalBatch = try int(json["global_batch"], "global_batch") }
        seed = try int(json["rng"]?["seed"], "rng.seed")
        epochBCE = try num(json["epoch_sums"]?["bce"], "epoch_sums.bce")
        epochKL = try num(json["epoch_sums"]?["kl"], "epoch_sums.kl")
        epochSamples = try int(json["epoch_sums"]?["samples"], "epoch_sums.samples")
        if case let .number(b)? = json["best"]?["test_loss"] { bestTestLoss = b }
        if case let .string(s)? = json["best"]?["checkpoint"] { bestCheckpoint = s }
        if case let .string(s)? = json["config_hash"] { configHash = s }
        if case let .string(s)? = json["data_hash"] { dataHash = s }
        plateau = PlateauState(json: json["lr_plateau"])
    }
}
