import Foundation
import Logging
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// The in-process communicator: its collectives against values computed by hand, and the
/// trainer and gradient reducer on 2-4 ranks as threads, against one rank.
@Suite struct LocalCommunicatorTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test("collectives: sums (float, double, bfloat16), broadcast, gather, min, max, barrier", arguments: [1, 2, 3, 4])
    func collectives(ranks: Int) throws {
        try LocalCommunicator.run(ranks: ranks) { comm in
            #expect(comm.size == ranks)
            let r = comm.rank
            var f: [Float] = (0..<1000).map { Float($0) + Float(r) * 0.5 }
            f.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: $0.count) }
            let rankSum = Float((0..<ranks).reduce(0, +)) * 0.5
            #expect(f[0] == rankSum && f[999] == Float(999 * ranks) + rankSum)

            var d: [Double] = [Double(r + 1), 1e-3]
            d.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: 2) }
            #expect(d[0] == Double(ranks * (ranks + 1) / 2) && abs(d[1] - 1e-3 * Double(ranks)) < 1e-15)

            // bfloat16: 1 + 2^-8 is not representable (8 mantissa bits), so sums round to even.
            var h: [UInt16] = [BFloat16.round(1), BFloat16.round(Float(r))]
            h.withUnsafeMutableBufferPointer { comm.startAllreduceSumBF16($0.baseAddress!, count: 2) }
            comm.waitAll()
            #expect(BFloat16.widen(h[0]) == Float(ranks))
            #expect(BFloat16.widen(h[1]) == Float((0..<ranks).reduce(0, +)))

            var b: [Float] = r == ranks - 1 ? [7, 8, 9] : [0, 0, 0]
            b.withUnsafeMutableBufferPointer { comm.broadcast($0.baseAddress!, count: 3, root: ranks - 1) }
            #expect(b == [7, 8, 9])

            // Records of different lengths, in rank order.
            let all = comm.allgather(Array(repeating: UInt8(r), count: r + 1))
            #expect(all == (0..<ranks).map { Array(repeating: UInt8($0), count: $0 + 1) })
            #expect(comm.allreduceMax(Int64(r * 10)) == Int64((ranks - 1) * 10))
            #expect(comm.allreduceMin(Int64(r - 5)) == -5)
            for _ in 0..<50 { comm.barrier() }
            #expect(comm.firstFailingRank(r == ranks - 1) == (ranks - 1))
        }
    }

    @Test("an error on one rank reaches every rank through `collectively`, and run() rethrows it")
    func failuresAgree() {
        struct Boom: Error, Equatable { let rank: Int }
        #expect(throws: Boom(rank: 1)) {
            try LocalCommunicator.run(ranks: 3) { comm in
                try comm.collectively { if comm.rank == 1 { throw Boom(rank: 1) } }
            }
        }
    }

    @Test("the gradient reducer in every mode gives the one-process gradient on 2-4 in-process ranks",
          arguments: [AllreduceMode.single, .overlap], [2, 3, 4])
    func reducer(mode: AllreduceMode, ranks: Int) throws {
        let batch = 36
        let data = try DatasetShard.load(images: Support.smallData + "/t10k-images", labels: Support.smallData + "/t10k-labels",
                                         classes: 10) { _ in 0..<batch }
        let model = VAE(VAEArchitecture())
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 3)
        let reference = Self.gradient(model, params, data: data, rows: 0..<batch, batch: batch)
        let results = Results(ranks)
        try LocalCommunicator.run(ranks: ranks) { comm in
            let plan = try BatchPlan(globalBatch: batch, world: ranks, samples: batch, classes: 1)
            let start = (0..<comm.rank).map(plan.localBatch).reduce(0, +)
            let rows = start..<(start + plan.localBatch(comm.rank))
            let a = model.architecture
            let ws = VAEWorkspace(architecture: a, capacity: rows.count)
            let g = FloatBuffer(count: model.parameterCount + 2)
            for (r, i) in rows.enumerated() { data.fill(ws, row: r, local: i, architecture: a) }
            GaussianNoise.fill(ws.eps.base, rows: rows.count, dim: a.latent, ids: ws.ids, key: GaussianNoise.key(seed: 1, stream: 1, counter: 0))
            let reducer = GradientReducer(comm: comm, buffer: g.base, parameterCount: model.parameterCount, extraCount: 2,
                                          layerStarts: model.backwardBoundaries, mode: mode, precision: .fp32, bucketFloats: 100_000)
            let scale = 1 / Float(batch)
            let loss = model.forwardForTraining(params.base, ws, rows: rows.count, scale: scale)
            reducer.begin()
            model.backward(params.base, g.base, ws, rows: rows.count, scale: scale, beta: 1, accumulate: false) {
                reducer.finished(upTo: $0)
            }
            g.base[model.parameterCount] = Float(loss.bce)
            reducer.complete()
            results.set(comm.rank, Array(UnsafeBufferPointer(start: g.base, count: model.parameterCount)))
        }
        for r in 0..<ranks {
            let mine = results.values[r]!
            #expect(mine == results.values[0]!, "rank \(r) holds a different sum")
            var diff = 0.0, norm = 0.0
            for i in 0..<model.parameterCount {
                let d = Double(mine[i]) - Double(reference.base[i])
                diff += d * d
                norm += Double(reference.base[i]) * Double(reference.base[i])
            }
            #expect(norm > 0 && (diff / norm).squareRoot() < 1e-5, "\(mode), \(ranks) ranks: relative \((diff / norm).squareRoot())")
        }
    }

    @Test("the trainer on 2 and 4 in-process ranks: identical parameters on every rank, the 1-rank loss, the 1-rank evaluation")
    func trainerMatchesOneRank() throws {
        let root = NSTemporaryDirectory() + "disttrain-local-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let options: TrainOptions = {
            var o = TrainOptions()
            o.printEpochs = false
            o.tensorboard = false
            return o
        }()
        @Sendable func config(_ name: String) -> TrainConfig {
            var c = Support.smallConfig(out: root + "/" + name)
            c.training.epochs = 2
            // 100 steps an epoch on 1 rank; fewer on 4, where a shard's rarest label limits the
            // epoch (76 steps): 150 steps in all on every world size.
            c.training.maxSteps = 150
            c.output.gridEvery = 0
            return c
        }
        // One rank: the reference run and its final test loss.
        let single = Results(1)
        let singleLoss = Results(1)
        try LocalCommunicator.run(ranks: 1) { comm in
            let t = try Trainer(config: config("one"), comm: comm, options: options, logger: quiet)
            try t.fit()
            single.set(0, Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count)))
            singleLoss.set(0, [Float(t.reports.last!.test.means(beta: 1).loss)])
        }
        let reference = Double(singleLoss.values[0]![0])
        // The end of epoch 1: resuming a mid-epoch checkpoint on another world size moves to
        // the next epoch, which would change the test-set noise.
        let oneRankCheckpoint = root + "/one/checkpoints/" + RunDirectory.checkpointName(step: 100)
        @Sendable func evaluateCheckpoint(_ comm: Communicator, _ name: String) throws -> Float {
            var resume = options
            resume.resumeFrom = oneRankCheckpoint
            let t = try Trainer(config: config(name), comm: comm, options: resume, logger: quiet)
            return Float(t.evaluate().means(beta: 1).loss)
        }
        let oneRankEvaluation = Results(1)
        try LocalCommunicator.run(ranks: 1) { comm in oneRankEvaluation.set(0, [try evaluateCheckpoint(comm, "eval1")]) }
        let evaluated = Double(oneRankEvaluation.values[0]![0])

        for ranks in [2, 4] {
            let params = Results(ranks)
            let losses = Results(ranks)
            let evaluations = Results(ranks)
            try LocalCommunicator.run(ranks: ranks) { comm in
                let t = try Trainer(config: config("n\(ranks)"), comm: comm, options: options, logger: quiet)
                try t.fit()
                params.set(comm.rank, Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count)))
                losses.set(comm.rank, [Float(t.reports.last!.test.means(beta: 1).loss), Float(t.state.globalStep)])
                // The 1-rank model evaluated on N ranks (sharded test set) gives the 1-rank test loss.
                evaluations.set(comm.rank, [try evaluateCheckpoint(comm, "eval\(ranks)")])
            }
            for r in 0..<ranks {
                #expect(params.values[r]! == params.values[0]!, "\(ranks) ranks: rank \(r)'s parameters differ from rank 0's")
                #expect(abs(Double(evaluations.values[r]![0]) - evaluated) <= 1e-6 * evaluated,
                        "\(ranks) ranks evaluate the 1-rank model to \(evaluations.values[r]![0]), 1 rank to \(evaluated)")
            }
            // Same recipe, same number of steps; batches hold other samples on N ranks, so the
            // loss agrees statistically, not bitwise.
            #expect(losses.values[0]![1] == 150, "\(ranks) ranks ran \(losses.values[0]![1]) steps")
            let loss = Double(losses.values[0]![0])
            #expect(abs(loss - reference) <= 0.03 * reference, "\(ranks) ranks: test loss \(loss), 1 rank \(reference)")
            #expect(params.values[0]! != single.values[0]!, "N ranks see other batches than 1 rank: the weights cannot be bitwise equal")
        }
    }

    /// The gradient of `rows` of `data` in one process, no communication.
    static func gradient(_ model: VAE, _ params: FloatBuffer, data: DatasetShard, rows: Range<Int>, batch: Int) -> FloatBuffer {
        let a = model.architecture
        let ws = VAEWorkspace(architecture: a, capacity: rows.count)
        let g = FloatBuffer(count: model.parameterCount)
        for (r, i) in rows.enumerated() { data.fill(ws, row: r, local: i, architecture: a) }
        GaussianNoise.fill(ws.eps.base, rows: rows.count, dim: a.latent, ids: ws.ids, key: GaussianNoise.key(seed: 1, stream: 1, counter: 0))
        _ = model.lossAndGradient(params.base, g.base, ws, rows: rows.count, scale: 1 / Float(batch), beta: 1, accumulate: false)
        return g
    }

    /// One slot per rank, written from the rank threads.
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [[Float]?]
        init(_ ranks: Int) { slots = Array(repeating: nil, count: ranks) }
        func set(_ rank: Int, _ value: [Float]) { lock.lock(); slots[rank] = value; lock.unlock() }
        var values: [[Float]?] { lock.lock(); defer { lock.unlock() }; return slots }
    }
}
