import DistTrain
import Foundation
import Logging
import Models
import Testing

/// `runtime.threading` and `runtime.blas_threads`: in pool mode a run gives the same bits on any
/// number of threads. (OpenBLAS mode is checked in a process of its own, scripts/scenarios/e2e.sh:
/// its threaded sgemm must not be called from the in-process ranks of other suites at once.)
@Suite("runtime.threading")
struct ThreadingTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Parameters and the last epoch's losses after 30 steps on one in-process rank.
    func train(threads: Int, mode: ThreadingMode, dir: String) throws -> [Float] {
        let out = LocalCommunicatorTests.Results(1)
        let quiet = self.quiet
        try LocalCommunicator.run(ranks: 1) { comm in
            var c = Support.smallConfig(out: dir)
            // Wide enough that every product is cut into blocks and every pass into chunks.
            c.model.encoderHidden = [384]
            c.model.decoderHidden = [384]
            c.training.globalBatch = 260
            c.training.maxSteps = 30
            c.training.epochs = 3
            c.runtime.blasThreads = threads
            c.runtime.threading = mode
            let t = try Support.fitted(c, comm: comm, logger: quiet)
            out.set(comm.rank, Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count))
                + [Float(t.reports.last!.test.bce), Float(t.reports.last!.train.bce)])
        }
        return out.values[0]!
    }

    @Test("pool mode: 30 steps train to the same bits on 1, 2 and 3 threads, and the pool's workers run passes")
    func sameBitsAnyThreads() throws {
        let root = NSTemporaryDirectory() + "disttrain-threads-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root); RankThreads.set(1) }
        let one = try train(threads: 1, mode: .pool, dir: root + "/1").map(\.bitPattern)
        for n in [2, 3] {
            // Other suites running in parallel may hold the shared pool (their passes then run
            // inline) or resize it: retry until this run's passes really ran on the workers.
            var usedWorkers = false
            for attempt in 0..<4 where !usedWorkers {
                let passes = WorkerPool.shared.passesOnWorkers
                let many = try train(threads: n, mode: .pool, dir: root + "/\(n)-\(attempt)").map(\.bitPattern)
                usedWorkers = WorkerPool.shared.passesOnWorkers > passes
                #expect(many == one, "\(n) threads: other bits than 1 thread")
            }
            #expect(usedWorkers, "\(n) threads: no pass ran on the pool's workers")
        }
    }
}
