import DistTrain
import Foundation
import Logging
import Models
import Testing

/// `runtime.elementwise_threads`: the passes between the products and Adam on more threads give
/// the same bits as on one.
@Suite("runtime.elementwise_threads")
struct ElementwiseThreadsTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Parameters, Adam moments and the last epoch's losses after 30 steps on one in-process rank.
    func train(elementwiseThreads: Int, dir: String) throws -> [UInt32] {
        var result: [UInt32] = []
        let quiet = self.quiet
        try LocalCommunicator.run(ranks: 1) { comm in
            var c = Support.smallConfig(out: dir)
            c.model.encoderHidden = [300]  // wide enough for several chunks per elementwise pass
            c.model.decoderHidden = [300]
            c.training.maxSteps = 30
            c.training.epochs = 2
            c.runtime.elementwiseThreads = elementwiseThreads
            var options = TrainOptions()
            options.printEpochs = false
            options.tensorboard = false
            let t = try Trainer(config: c, comm: comm, options: options, logger: quiet)
            try t.fit()
            let params = Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count))
            result = (params + [Float(t.reports.last!.test.bce), Float(t.reports.last!.train.bce)]).map(\.bitPattern)
        }
        return result
    }

    @Test("30 steps train to the same bits with 1, 2 and 3 elementwise threads, and the pool's workers run passes")
    func sameBits() throws {
        let root = NSTemporaryDirectory() + "disttrain-ew-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root); BLASThreads.set(1, elementwise: 1) }
        let one = try train(elementwiseThreads: 1, dir: root + "/1")
        for n in [2, 3] {
            // Other suites running in parallel may hold the shared pool (their passes then run
            // inline) or resize it: retry until this run's passes really ran on the workers.
            var usedWorkers = false
            for attempt in 0..<4 where !usedWorkers {
                let passes = WorkerPool.shared.passesOnWorkers
                let many = try train(elementwiseThreads: n, dir: root + "/\(n)-\(attempt)")
                usedWorkers = WorkerPool.shared.passesOnWorkers > passes
                #expect(many == one, "\(n) elementwise threads: other bits than 1")
            }
            #expect(usedWorkers, "\(n) elementwise threads: no pass ran on the pool's workers")
        }
    }
}
