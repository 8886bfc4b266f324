import Foundation
import Testing
import Models
@testable import DistTrain
@testable import DistTrainIO

/// [gumbel] NMI (arithmetic normalization, as scikit-learn's default), the temperature schedule,
/// and the categorical-latent config / checkpoint metadata.
struct ClusteringTests {
    @Test("identical labelings have NMI 1")
    func identical() {
        let a = [0, 0, 1, 1, 2, 2, 2, 3]
        #expect(abs(Clustering.nmi(predicted: a, truth: a) - 1) < 1e-12)
    }

    @Test("a relabeled (permuted) clustering has NMI 1")
    func permuted() {
        let truth = [0, 0, 1, 1, 2, 2, 2, 3, 3, 1]
        let map = [0: 7, 1: 2, 2: 0, 3: 5]
        #expect(abs(Clustering.nmi(predicted: truth.map { map[$0]! }, truth: truth) - 1) < 1e-12)
    }

    @Test("independent labelings have NMI near 0")
    func independent() {
        // Exactly independent: every (a, b) pair equally often.
        var a: [Int] = [], b: [Int] = []
        for i in 0..<4 { for j in 0..<3 { for _ in 0..<5 { a.append(i); b.append(j) } } }
        #expect(abs(Clustering.nmi(predicted: a, truth: b)) < 1e-12)
        // Pseudo-random independent labels: small.
        var rng = SplitMix64(seed: 1)
        let x = (0..<20_000).map { _ in rng.below(10) }, y = (0..<20_000).map { _ in rng.below(10) }
        #expect(Clustering.nmi(predicted: x, truth: y) < 0.01)
    }

    @Test("a hand-computed example")
    func handComputed() {
        // predicted [0,0,1,1], truth [0,0,0,1]: table {(0,0): 2, (1,0): 1, (1,1): 1} of 4,
        // H(p) = ln 2, H(t) = -(3/4 ln 3/4 + 1/4 ln 1/4), I = sum p_ij ln(p_ij / (p_i p_j)).
        let hp = log(2.0)
        let ht = -(0.75 * log(0.75) + 0.25 * log(0.25))
        let i = 0.5 * log(0.5 / (0.5 * 0.75)) + 0.25 * log(0.25 / (0.5 * 0.75)) + 0.25 * log(0.25 / (0.5 * 0.25))
        let expected = i / ((hp + ht) / 2)
        #expect(abs(expected - 0.3437110184854508) < 1e-12)  // the same worked out by hand (float64)
        #expect(abs(Clustering.nmi(predicted: [0, 0, 1, 1], truth: [0, 0, 0, 1]) - expected) < 1e-12)
        // The contingency-table form gives the same, with an unused (empty) cluster row.
        let table: [Double] = [2, 0, 0, 0, 1, 1]
        #expect(abs(Clustering.nmi(contingency: table, rows: 3, cols: 2) - expected) < 1e-12)
        // One cluster against one class: perfect agreement by convention; one cluster vs many classes: 0.
        #expect(Clustering.nmi(predicted: [4, 4, 4], truth: [1, 1, 1]) == 1)
        #expect(Clustering.nmi(predicted: [4, 4, 4], truth: [0, 1, 2]) == 0)
    }

    @Test("temperature decays exponentially to its floor")
    func temperature() {
        var c = TrainConfig()
        #expect(Temperature.at(step: 0, config: c) == 1)
        #expect(abs(Double(Temperature.at(step: 10_000, config: c)) - exp(-0.3)) < 1e-6)
        #expect(Temperature.at(step: 1_000_000, config: c) == 0.5)
        c.training.tauStart = 2; c.training.tauMin = 0.1; c.training.tauDecay = 0
        #expect(Temperature.at(step: 123_456, config: c) == 2)
    }

    @Test("latent_kind parses, round-trips, and reaches the architecture and checkpoint metadata")
    func latentKindConfig() throws {
        let c = try TrainConfig.load(path: Support.root + "/configs/gumbel-vae.json")
        #expect(c.model.latentKind == .categorical && c.model.latent == 10 && c.model.conditioning == .none)
        #expect(c.training.globalBatch == 128 && c.training.epochs == 15)
        #expect(try TrainConfig(json: c.json) == c)
        let arch = c.architecture(inputDim: 784)
        #expect(arch.latentKind == .categorical && arch.headsWidth == 10)
        #expect(TrainConfig().model.latentKind == .gaussian)
        #expect(throws: ConfigError.self) { try TrainConfig(json: try JSON.parse(#"{"model": {"latent_kind": "poisson"}}"#)) }

        let meta = ["format": ModelMetadata.format, "config": ModelMetadata.json(arch).serialized]
        #expect(try ModelMetadata.architecture(from: meta, path: "x") == arch)
        // Old checkpoints carry no latent_kind: they are Gaussian.
        let gaussian = TrainConfig().architecture(inputDim: 784)
        guard case let .object(pairs) = ModelMetadata.json(gaussian) else { Issue.record("not an object"); return }
        let old = JSON.object(pairs.filter { $0.0 != "latent_kind" })
        #expect(try ModelMetadata.architecture(from: ["format": ModelMetadata.format, "config": old.serialized], path: "x") == gaussian)
    }
}
