import Testing
@testable import DistTrain
@testable import DistTrainIO

// TrainerState's trainer.json: the JSON round trip (what a resume reads back is what was
// written) and the validation of what it reads.

@Suite("TrainerState: trainer.json round trip and validation")
struct TrainerStateTests {
    static var sample: TrainerState {
        var s = TrainerState()
        s.epoch = 3
        s.stepInEpoch = 17
        s.globalStep = 721
        s.worldSize = 4
        s.seed = 12345
        s.epochBCE = 1_234_567.891011
        s.epochKL = 0.1 + 0.2            // not a short decimal: must survive printing
        s.epochSamples = 4352
        s.bestTestLoss = 93.72000122070312
        s.bestCheckpoint = "step-00000702"
        s.configHash = "af63dc4c8601ec8c"
        s.dataHash = "0000000000000001"
        return s
    }

    @Test("write, print, parse, read: the same state, every field")
    func roundTrip() throws {
        let s = Self.sample
        let text = s.json.serialized
        let back = try TrainerState(json: try JSON.parse(text), path: "ckpt")
        #expect(back == s)
        #expect(try TrainerState(json: try JSON.parse(s.json.pretty), path: "ckpt") == s)
    }

    @Test("a fresh state (no best loss yet: infinity) round-trips, the best loss as null")
    func freshState() throws {
        let s = TrainerState()
        #expect(s.json["best"]?["test_loss"] == .null)
        let back = try TrainerState(json: try JSON.parse(s.json.serialized), path: "ckpt")
        #expect(back == s)
        #expect(back.bestTestLoss == .infinity)
    }

    @Test("the file's field names, as documented in the README")
    func fieldNames() {
        let j = Self.sample.json
        #expect(j["format"] == "disttrain.trainer.v1")
        #expect(j["epoch"] == 3 && j["step_in_epoch"] == 17 && j["global_step"] == 721 && j["world_size"] == 4)
        #expect(j["rng"]?["seed"] == 12345)
        #expect(j["epoch_sums"]?["samples"] == 4352)
        #expect(j["best"]?["checkpoint"] == "step-00000702")
        #expect(j["config_hash"] == "af63dc4c8601ec8c" && j["data_hash"] == "0000000000000001")
    }

    /// The sample's JSON with `edit` applied to its top-level object.
    static func edited(_ edit: (inout [(String, JSON)]) -> Void) -> JSON {
        guard case var .object(pairs) = sample.json else { fatalError("TrainerState.json is an object") }
        edit(&pairs)
        return .object(pairs)
    }

    static func set(_ pairs: inout [(String, JSON)], _ key: String, _ value: JSON?) {
        if let i = pairs.firstIndex(where: { $0.0 == key }) {
            if let value { pairs[i].1 = value } else { pairs.remove(at: i) }
        }
    }

    @Test("invalid trainer.json is refused with the checkpoint path and the field", arguments: [
        ("format", JSON.string("something.else"), "not a disttrain trainer state"),
        ("format", nil, "not a disttrain trainer state"),
        ("epoch", JSON.number(-1), "\"epoch\""),
        ("epoch", JSON.number(2.5), "\"epoch\""),
        ("step_in_epoch", JSON.string("3"), "\"step_in_epoch\""),
        ("global_step", nil, "\"global_step\""),
        ("world_size", JSON.null, "\"world_size\""),
        ("rng", JSON.object([]), "\"rng.seed\""),
        ("epoch_sums", JSON.object([("bce", 1), ("kl", 2)]), "\"epoch_sums.samples\""),
        ("epoch_sums", JSON.object([("kl", 2), ("samples", 3)]), "\"epoch_sums.bce\""),
    ] as [(String, JSON?, String)])
    func validation(field: String, value: JSON?, mentions: String) {
        let j = Self.edited { Self.set(&$0, field, value) }
        let error = #expect(throws: CheckpointError.self) { try TrainerState(json: j, path: "runs/x/checkpoints/step-1") }
        guard case let .badState(path, reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path == "runs/x/checkpoints/step-1")
        #expect(reason.contains(mentions), "\(reason)")
        #expect("\(error!)".hasPrefix("checkpoint runs/x/checkpoints/step-1: "))
    }

    @Test("optional fields may be absent: best loss, best checkpoint, hashes")
    func optionalFields() throws {
        let j = Self.edited { p in for k in ["best", "config_hash", "data_hash"] { Self.set(&p, k, nil) } }
        let s = try TrainerState(json: j, path: "ckpt")
        #expect(s.bestTestLoss == .infinity && s.bestCheckpoint == "" && s.configHash == "" && s.dataHash == "")
        #expect(s.globalStep == 721 && s.epochSamples == 4352)
    }
}
