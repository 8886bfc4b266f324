#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Models

/// The rank's worker pool: every chunk runs once, on several threads, without heap allocations
/// on the calling thread; and a training step (products in blocks, elementwise passes) gives the
/// same bits on 1, 2 or 3 threads (the pool's whole promise: boundaries fixed by the shapes,
/// reductions in a fixed order).
struct WorkerPoolTests {
    /// Per-chunk records of a pass: how often each chunk ran and on which thread.
    struct Record {
        var hits: UnsafeMutablePointer<Int>
        var owner: UnsafeMutablePointer<UInt>
    }

    @Test("every chunk runs exactly once, on more than one thread")
    func chunksRunOnce() {
        let pool = WorkerPool()
        pool.setThreads(3)
        defer { pool.setThreads(1) }
        let chunks = 40
        var record = Record(hits: .allocate(capacity: chunks), owner: .allocate(capacity: chunks))
        defer { record.hits.deallocate(); record.owner.deallocate() }
        record.hits.initialize(repeating: 0, count: chunks)
        for _ in 0..<3 {
            pool.run(chunks: chunks, &record) { raw, c in
                let r = raw.assumingMemoryBound(to: Record.self).pointee
                r.hits[c] += 1
                r.owner[c] = UInt(pthread_self())
                usleep(500)  // long enough that the workers wake and take chunks
            }
        }
        #expect((0..<chunks).allSatisfy { record.hits[$0] == 3 })
        let threads = Set((0..<chunks).map { record.owner[$0] })
        #expect(threads.count > 1, "all 40 chunks ran on one thread")
        #expect(pool.passesOnWorkers >= 1)
    }

    @Test("chunk ranges cover 0..<count with fixed boundaries, the last chunk shorter")
    func chunkBoundaries() {
        #expect(WorkerPool.chunks(count: 70, size: 20) == 4)
        #expect((0..<4).map { WorkerPool.range($0, count: 70, size: 20) } == [0..<20, 20..<40, 40..<60, 60..<70])
        #expect(WorkerPool.chunks(count: 0, size: 20) == 0)
    }

    struct Scale {
        var data: UnsafeMutablePointer<Float>
        var factor: Float
    }

    @Test("a pass allocates nothing on the calling thread")
    func noAllocations() {
        let pool = WorkerPool()
        pool.setThreads(2)
        defer { pool.setThreads(1) }
        var pass = Scale(data: .allocate(capacity: 100_000), factor: 1.5)
        defer { pass.data.deallocate() }
        pass.data.initialize(repeating: 1, count: 100_000)
        func scale() {
            pool.run(chunks: WorkerPool.chunks(count: 100_000, size: 4096), &pass) { raw, c in
                let p = raw.assumingMemoryBound(to: Scale.self).pointee
                for i in WorkerPool.range(c, count: 100_000, size: 4096) { p.data[i] *= p.factor }
            }
        }
        scale()  // warm-up
        let before = ThreadAllocations.count
        for _ in 0..<20 { scale() }
        #expect(ThreadAllocations.count - before == 0)
        var expected: Float = 1
        for _ in 0..<21 { expected *= 1.5 }
        #expect(pass.data[99_999] == expected && pass.data[0] == expected)
    }

    /// One training step's loss, gradients and the loss pass's per-row terms, as bits.
    static func step(threads: Int) -> (loss: [UInt64], grads: [UInt32], rows: [UInt32]) {
        RankThreads.set(threads)  // products in blocks on the pool too (OpenBLAS single-threaded)
        let arch = VAEArchitecture(inputDim: 200, classes: 4, encoderHidden: [300, 40], decoderHidden: [300], latent: 6)
        let model = VAE(arch)
        let params = FloatBuffer(count: model.parameterCount)
        let grads = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 7)
        let rows = 100
        let ws = GradientCheckTests.batch(arch, rows: rows, seed: 11, model: model)
        let loss = model.lossAndGradient(params.base, grads.base, ws, rows: rows, scale: 0.01, beta: 1, accumulate: false)
        let evaluated = model.loss(params.base, ws, rows: rows)
        return ([loss.bce.bitPattern, loss.kl.bitPattern, evaluated.bce.bitPattern, evaluated.kl.bitPattern],
                (0..<model.parameterCount).map { grads.base[$0].bitPattern },
                (0..<rows).flatMap { [ws.rowBCE.base[$0].bitPattern, ws.rowKL.base[$0].bitPattern] })
    }

    @Test("a training step is bitwise the same on 1, 2 and 3 threads")
    func stepBitwise() {
        defer { RankThreads.set(1); WorkerPool.shared.callerTakesChunks = true }
        let one = Self.step(threads: 1)
        WorkerPool.shared.callerTakesChunks = false  // every chunk of these steps on the workers
        for n in [2, 3] {
            // Other suites running in parallel may resize the shared pool or hold it (their
            // passes then run inline here): retry until this step's passes ran on the workers.
            var usedWorkers = false
            for _ in 0..<5 where !usedWorkers {
                let passes = WorkerPool.shared.passesOnWorkers
                let many = Self.step(threads: n)
                usedWorkers = WorkerPool.shared.passesOnWorkers > passes
                #expect(many.loss == one.loss, "\(n) threads: loss sums differ")
                #expect(many.grads == one.grads, "\(n) threads: gradients differ")
                #expect(many.rows == one.rows, "\(n) threads: per-row terms differ")
            }
            #expect(usedWorkers, "\(n) threads: no pass ran on the workers")
        }
    }
}
