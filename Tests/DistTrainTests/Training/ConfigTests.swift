import Foundation
import Testing
@testable import DistTrain
@testable import DistTrainIO

struct ConfigTests {
    func parse(_ text: String) throws -> TrainConfig { try TrainConfig(json: try JSON.parse(text)) }

    @Test("defaults reproduce the seed recipe and configs/cvae.json says the same")
    func defaults() throws {
        let c = TrainConfig()
        #expect(c.model.encoderHidden == [512, 512] && c.model.decoderHidden == [512, 512] && c.model.latent == 16)
        #expect(c.training.globalBatch == 256 && c.training.epochs == 50 && c.training.seed == 0)
        #expect(c.optimizer.lr == 1e-3 && c.optimizer.beta1 == 0.9 && c.optimizer.beta2 == 0.999 && c.optimizer.eps == 1e-8)
        let file = try TrainConfig.load(path: Support.root + "/configs/cvae.json")
        #expect(file == c)
    }

    @Test("the config survives a JSON round trip")
    func roundTrip() throws {
        var c = TrainConfig()
        c.model.activation = "leaky_relu"
        c.model.conditioning = .decoder
        c.training.klWeight = 10
        c.output.dir = "x/y"
        #expect(try TrainConfig(json: try JSON.parse(c.json.serialized)) == c)
    }

    @Test("unknown fields are named, with a suggestion")
    func unknownField() {
        #expect(throws: ConfigError.unknownField(field: "training.epoch", suggestion: "training.epochs")) {
            try parse(#"{"training": {"epoch": 3}}"#)
        }
        #expect(throws: ConfigError.unknownField(field: "modle", suggestion: "model")) { try parse(#"{"modle": {}}"#) }
        #expect(throws: ConfigError.unknownField(field: "model.zzzzzzzz", suggestion: nil)) { try parse(#"{"model": {"zzzzzzzz": 1}}"#) }
    }

    @Test("wrong types are named")
    func wrongTypes() {
        #expect(throws: ConfigError.wrongType(field: "model.latent", expected: "an integer", got: "a string")) {
            try parse(#"{"model": {"latent": "16"}}"#)
        }
        #expect(throws: ConfigError.wrongType(field: "training.global_batch", expected: "an integer", got: "2.5")) {
            try parse(#"{"training": {"global_batch": 2.5}}"#)
        }
        #expect(throws: ConfigError.wrongType(field: "model.encoder_hidden", expected: "an array of integers", got: "a number")) {
            try parse(#"{"model": {"encoder_hidden": 512}}"#)
        }
        #expect(throws: ConfigError.wrongType(field: "model", expected: "an object", got: "an array")) { try parse(#"{"model": []}"#) }
    }

    @Test("impossible values are named")
    func impossibleValues() {
        #expect(throws: ConfigError.invalidValue(field: "model.latent", reason: "must be at least 1, got 0")) {
            try parse(#"{"model": {"latent": 0}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "model.encoder_hidden[1]", reason: "must be at least 1, got 0")) {
            try parse(#"{"model": {"encoder_hidden": [512, 0]}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "optimizer.lr", reason: "must be greater than 0, got 0")) {
            try parse(#"{"optimizer": {"lr": 0}}"#)
        }
        #expect(throws: ConfigError.invalidValue(field: "optimizer.beta2", reason: "must be less than 1, got 1")) {
            try parse(#"{"optimizer": {"beta2": 1}}"#)
        }
        #expect(throws: (any Error).self) { try parse(#"{"model": {"activation": "tanh"}}"#) }
        #expect(throws: (any Error).self) { try parse(#"{"model": {"conditioning": "label"}}"#) }
    }

    @Test("syntax errors and unreadable files name the path")
    func fileErrors() throws {
        let path = NSTemporaryDirectory() + "bad-\(UInt32.random(in: 0...UInt32.max)).json"
        try AtomicFile.write(Array("{\"model\": ".utf8), to: path)
        #expect(throws: ConfigError.self) { try TrainConfig.load(path: path) }
        do { _ = try TrainConfig.load(path: path) } catch { #expect("\(error)".contains(path)) }
        #expect(throws: ConfigError.self) { try TrainConfig.load(path: "/nonexistent/cfg.json") }
    }
}
