import Foundation
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// SyncBN across real ranks: a BatchNorm model's gradient from N ranks of B/N rows, with the
/// statistics summed through the communicator, equals the one-process gradient of all B rows
/// (and the running statistics agree). The same holds for a VQ-VAE's EMA codebook (its counts
/// and sums go through the same kind of reducer): codebook, cluster sizes and sums agree; and
/// for a dead-code restart: the same codes re-seeded with the same vectors. Holds for any world size: `swift test` runs it as a
/// world of one and in-process at 2 and 4 ranks (LocalCommunicator); scripts/test.sh runs the
/// MPI suite under mpirun -n 2 and -n 4 (its own steps: `--filter SyncBatchNormAcrossRanks`; the MPI suites must not run at the same time in one process).
@Suite(.serialized)
struct SyncBatchNormAcrossRanks {
    /// Seed 004's CVAE (BatchNorm and dropout in both stacks) and a small conv stack with BatchNorm2d.
    static let architectures: [(String, VAEArchitecture)] = [
        ("mlp+bn+dropout", VAEArchitecture(inputShape: .flat(784), classes: 10,
                                           encoder: [.linear(out: 64), .relu, .batchNorm, .dropout(p: 0.3)],
                                           decoder: [.linear(out: 64), .leakyReLU(slope: 0.2), .batchNorm, .dropout(p: 0.3), .linear(out: 784)],
                                           latent: 8, conditioning: .both)),
        ("conv+bn2d", VAEArchitecture(inputShape: TensorShape(1, 28, 28), classes: 10,
                                      encoder: [.conv2d(out: 4, kernel: 3, stride: 2, padding: 1), .batchNorm, .leakyReLU(slope: 0.2),
                                                .conv2d(out: 8, kernel: 3, stride: 2, padding: 1), .batchNorm, .leakyReLU(slope: 0.2), .flatten],
                                      decoder: [.linear(out: 8 * 7 * 7), .reshape([8, 7, 7]),
                                                .convTranspose2d(out: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1), .batchNorm,
                                                .leakyReLU(slope: 0.2),
                                                .convTranspose2d(out: 1, kernel: 3, stride: 2, padding: 1, outputPadding: 1)],
                                      latent: 6, conditioning: .both, reconstruction: .mse)),
        // [vq] An EMA codebook: its counts and sums go through the codebook reducer.
        ("vq-ema", { () -> VAEArchitecture in
            var a = VAEArchitecture(inputShape: TensorShape(1, 28, 28), classes: 10,
                                    encoder: [.conv2d(out: 4, kernel: 4, stride: 2, padding: 1), .conv2d(out: 4, kernel: 4, stride: 2, padding: 1),
                                              .relu, .residual([.conv2d(out: 4, kernel: 3, stride: 1, padding: 1)]), .conv2d(out: 3, kernel: 1)],
                                    decoder: [.reshape([3, 7, 7]), .conv2d(out: 4, kernel: 1), .relu,
                                              .convTranspose2d(out: 4, kernel: 4, stride: 2, padding: 1),
                                              .convTranspose2d(out: 1, kernel: 4, stride: 2, padding: 1)],
                                    latent: 3, conditioning: .none, latentKind: .vectorQuantized)
            a.codebookSize = 16
            a.codebookEMA = 0.9
            return a
        }()),
        // [vq] Dead-code restart after one unused forward, for a gradient and an EMA codebook:
        // the step's counts and the candidates go through the codebook reducer.
        ("vq-restart", vqRestart(ema: 0)),
        ("vq-ema-restart", vqRestart(ema: 0.9)),
    ]

    static func vqRestart(ema: Float) -> VAEArchitecture {
        var a = VAEArchitecture(inputShape: TensorShape(1, 28, 28), classes: 10,
                                encoder: [.conv2d(out: 4, kernel: 4, stride: 2, padding: 1), .conv2d(out: 4, kernel: 4, stride: 2, padding: 1),
                                          .relu, .conv2d(out: 3, kernel: 1)],
                                decoder: [.reshape([3, 7, 7]), .convTranspose2d(out: 4, kernel: 4, stride: 2, padding: 1),
                                          .convTranspose2d(out: 1, kernel: 4, stride: 2, padding: 1)],
                                latent: 3, conditioning: .none, latentKind: .vectorQuantized)
        a.codebookSize = 16
        a.codebookEMA = ema
        a.codebookRestartSteps = 1
        return a
    }

    static let batch = 48

    static func data() throws -> DatasetShard {
        try DatasetShard.load(images: Support.smallData + "/t10k-images", labels: Support.smallData + "/t10k-labels",
                              classes: 10) { _ in 0..<batch }
    }

    /// This rank's share of the batch: its gradient (scaled by 1 / batch) and running statistics
    /// after one training forward, with BatchNorm's sums through `reducer`; then a VQ-VAE's
    /// dead-code restart (when on), into a copy of the parameters; how many codes it re-seeded.
    static func step(_ model: VAE, _ params: FloatBuffer, data: DatasetShard, rows: Range<Int>,
                     reducer: BatchStatisticsReducer?) -> (grads: FloatBuffer, state: FloatBuffer, params: FloatBuffer, restarted: [Int32]) {
        let p = FloatBuffer(count: model.parameterCount)
        p.base.update(from: params.base, count: model.parameterCount)
        let ws = VAEWorkspace(model: model, capacity: max(rows.count, 1))
        let g = FloatBuffer(count: model.parameterCount)
        let state = FloatBuffer(count: max(model.stateCount, 1))
        model.initializeState(state.base)
        // An EMA codebook is state: drawn here (the parameters drawn with it are thrown away).
        let thrownAway = FloatBuffer(count: model.parameterCount)
        withExtendedLifetime(thrownAway) { model.initialize(thrownAway.base, seed: 11, state: state.base) }
        let a = model.architecture
        for (r, i) in rows.enumerated() { data.fill(ws, row: r, local: i, architecture: a) }
        GaussianNoise.fill(ws.eps.base, rows: rows.count, dim: a.latent, ids: ws.ids, key: GaussianNoise.key(seed: 1, stream: 1, counter: 0))
        ws.seed = 7
        ws.step = 3
        _ = model.lossAndGradient(p.base, g.base, ws, rows: rows.count, scale: 1 / Float(batch), beta: 1, accumulate: false,
                                  state: state.base, reducer: reducer, codebookReducer: reducer)
        model.restartDeadCodes(p.base, ws, rows: rows.count, state: state.base, rowOffset: rows.lowerBound, globalRows: batch,
                               codebookReducer: reducer)
        return (g, state, p, Array(UnsafeBufferPointer(start: ws.restartedCodes, count: ws.restartedCount)))
    }

    static func relative(_ a: FloatBuffer, _ b: FloatBuffer, count: Int) -> Double {
        var diff = 0.0, norm = 0.0
        for i in 0..<count {
            let d = Double(a.base[i]) - Double(b.base[i])
            diff += d * d
            norm += Double(b.base[i]) * Double(b.base[i])
        }
        return (diff / max(norm, 1e-300)).squareRoot()
    }

    /// The check itself, on any communicator.
    static func check(_ comm: Communicator, name: String, architecture: VAEArchitecture) throws {
        let data = try data()
        let model = VAE(architecture)
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 11)
        let reference = step(model, params, data: data, rows: 0..<batch, reducer: nil)
        let plan = try BatchPlan(globalBatch: batch, world: comm.size, samples: batch, classes: 1)
        let start = (0..<comm.rank).map(plan.localBatch).reduce(0, +)
        let mine = step(model, params, data: data, rows: start..<(start + plan.localBatch(comm.rank)),
                        reducer: comm.size > 1 ? SyncBatchStatistics(comm: comm) : nil)
        comm.allreduceSum(mine.grads.base, count: model.parameterCount)
        let gradientError = relative(mine.grads, reference.grads, count: model.parameterCount)
        let stateError = relative(mine.state, reference.state, count: model.stateCount)
        #expect(gradientError < 1e-5, "\(name), \(comm.size) ranks: gradient relative difference \(gradientError)")
        #expect(stateError < 1e-6, "\(name), \(comm.size) ranks: running statistics relative difference \(stateError)")
        #expect(model.stateCount > 0)
        // A restart writes the same vectors on every rank (the state check above covers an EMA
        // codebook and the idle counts; the parameters hold a gradient codebook).
        if architecture.codebookRestartSteps > 0 {
            #expect(!reference.restarted.isEmpty && mine.restarted == reference.restarted, "\(name), \(comm.size) ranks: codes restarted")
            let parameterError = relative(mine.params, reference.params, count: model.parameterCount)
            #expect(parameterError < 1e-6, "\(name), \(comm.size) ranks: parameters after the restart, relative difference \(parameterError)")
        }
    }

    @Test("SyncBN: N ranks of B/N rows give the one-process gradient and running statistics (MPI world)")
    func mpiWorld() throws {
        for (name, a) in Self.architectures { try Self.check(Support.world, name: name, architecture: a) }
    }

    @Test("SyncBN: the same at 2 and 4 in-process ranks", arguments: [2, 4])
    func inProcess(ranks: Int) throws {
        try LocalCommunicator.run(ranks: ranks) { comm in
            for (name, a) in Self.architectures { try Self.check(comm, name: name, architecture: a) }
        }
    }

    @Test("local BatchNorm statistics (runtime.batchnorm local) differ from the whole batch's: the sync mode is what makes them equal")
    func localDiffers() throws {
        let data = try Self.data()
        let model = VAE(Self.architectures[0].1)
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 11)
        let whole = Self.step(model, params, data: data, rows: 0..<Self.batch, reducer: nil)
        let half = Self.batch / 2
        let a = Self.step(model, params, data: data, rows: 0..<half, reducer: nil)
        let b = Self.step(model, params, data: data, rows: half..<Self.batch, reducer: nil)
        for i in 0..<model.parameterCount { a.grads.base[i] += b.grads.base[i] }
        #expect(Self.relative(a.grads, whole.grads, count: model.parameterCount) > 1e-3)
    }
}
