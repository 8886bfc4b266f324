import Foundation
import Testing
@testable import DistTrain
@testable import DistTrainIO
import Models

/// Learning-rate schedules, batch scaling, reduce-on-plateau, gradient clipping and weight
/// decay, against values computed by hand.
@Suite struct OptimizerScheduleTests {
    func close(_ a: Double, _ b: Double, _ tol: Double = 1e-12) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

    @Test("constant: the configured lr at every step, exactly")
    func constant() {
        let s = LRSchedule(kind: .constant, peak: 1e-3)
        for t in [0, 1, 77, 100_000] { #expect(s.lr(step: t) == 1e-3) }
    }

    @Test("linear warmup then cosine decay: values at chosen steps")
    func warmupCosine() {
        let s = LRSchedule(kind: .cosine, peak: 0.1, warmup: 10, total: 110, minLR: 0.01)
        #expect(close(s.lr(step: 0), 0.01))          // 0.1 * 1/10
        #expect(close(s.lr(step: 4), 0.05))          // 0.1 * 5/10
        #expect(close(s.lr(step: 9), 0.1))           // last warmup step reaches the peak
        #expect(close(s.lr(step: 10), 0.1))          // p = 0
        #expect(close(s.lr(step: 60), 0.01 + 0.09 * 0.5))  // p = 1/2: halfway
        #expect(close(s.lr(step: 35), 0.01 + 0.09 * (1 + cos(Double.pi / 4)) / 2))
        #expect(close(s.lr(step: 110), 0.01))        // p = 1: the floor
        #expect(close(s.lr(step: 500), 0.01))        // beyond the end: stays at the floor
    }

    @Test("linear and step decay, plateau factor")
    func linearStepPlateau() {
        let l = LRSchedule(kind: .linear, peak: 1.0, warmup: 0, total: 100, minLR: 0)
        #expect(close(l.lr(step: 0), 1.0) && close(l.lr(step: 25), 0.75) && close(l.lr(step: 100), 0))
        let st = LRSchedule(kind: .step, peak: 1.0, warmup: 2, stepEvery: 10, gamma: 0.5)
        #expect(close(st.lr(step: 0), 0.5))   // warmup 1/2
        #expect(close(st.lr(step: 9), 1.0) && close(st.lr(step: 10), 0.5) && close(st.lr(step: 29), 0.25) && close(st.lr(step: 30), 0.125))
        let p = LRSchedule(kind: .plateau, peak: 1.0, minLR: 0.05)
        #expect(p.lr(step: 3, plateauFactor: 0.1) == 0.1)
        #expect(p.lr(step: 3, plateauFactor: 0.01) == 0.05)  // floored at min_lr
    }

    @Test("warmup and step decay given in epochs become steps; the total is epochs x steps or max_steps")
    func fromConfig() throws {
        var c = TrainConfig()
        c.optimizer.schedule = .cosine
        c.optimizer.warmupEpochs = 0.5
        c.training.epochs = 3
        let s = try LRSchedule(config: c, stepsPerEpoch: 234)
        #expect(s.warmup == 117 && s.total == 702)
        c.training.maxSteps = 300
        #expect(try LRSchedule(config: c, stepsPerEpoch: 234).total == 300)
        c.optimizer.schedule = .step
        #expect(throws: ConfigError.self) { try LRSchedule(config: c, stepsPerEpoch: 234) }
        c.optimizer.stepEveryEpochs = 2
        #expect(try LRSchedule(config: c, stepsPerEpoch: 234).stepEvery == 468)
    }

    @Test("batch scaling: none, linear and sqrt against the reference batch")
    func scaling() throws {
        #expect(LRScaling.none.factor(batch: 2048, reference: 256) == 1)
        #expect(LRScaling.linear.factor(batch: 2048, reference: 256) == 8)
        #expect(LRScaling.sqrt.factor(batch: 1024, reference: 256) == 2)
        #expect(LRScaling.linear.factor(batch: 128, reference: 256) == 0.5)
        var c = TrainConfig()
        c.training.globalBatch = 4096
        c.optimizer.lr = 1e-3
        c.optimizer.scaleLR = .sqrt
        c.optimizer.warmupSteps = 5
        let s = try LRSchedule(config: c, stepsPerEpoch: 14)
        #expect(close(s.peak, 4e-3))
        #expect(close(s.lr(step: 0), 4e-3 / 5) && close(s.lr(step: 4), 4e-3) && close(s.lr(step: 50), 4e-3))
    }

    @Test("reduce-on-plateau follows PyTorch: factor after more than `patience` epochs without a relative improvement")
    func plateau() {
        var p = PlateauState()
        let losses = [10.0, 9.0, 9.0, 8.9999, 9.5, 9.0, 8.0, 8.0, 8.0, 8.0]
        var factors: [Double] = []
        for l in losses {
            p.observe(l, reduction: 0.1, patience: 2, threshold: 1e-4)
            factors.append(p.factor)
        }
        // 10 best, 9 best, 9 bad(1), 8.9999 is not 1e-4 better: bad(2), 9.5 bad(3) > 2: reduce;
        // 9.0 bad(1), 8.0 best, then three bad epochs reduce again.
        #expect(factors.map { ($0 * 1000).rounded() / 1000 } == [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01])
        #expect(p.best == 8.0 && p.badEpochs == 0)
        // Round trip through trainer.json, and an old trainer.json without it loads fresh.
        var s = TrainerState()
        s.plateau = p
        let back = try! TrainerState(json: JSON.parse(s.json.serialized), path: "x")
        #expect(back.plateau == p)
        guard case let .object(pairs) = s.json else { Issue.record("trainer.json is not an object"); return }
        let old = JSON.object(pairs.filter { $0.0 != "lr_plateau" })
        #expect(try! TrainerState(json: old, path: "x").plateau == PlateauState())
    }

    @Test("gradient clipping scales a crafted gradient to the global norm; below the threshold nothing changes")
    func clipping() {
        let g = FloatBuffer(count: 20)
        for i in 0..<20 { g.base[i] = 0 }
        g.base[3] = 3; g.base[17] = 4   // norm 5
        let norm = Numerics.sumOfSquares(g.base, count: 20).squareRoot()
        #expect(norm == 5)
        Numerics.clip(g.base, count: 20, norm: norm, maxNorm: 1)
        #expect(abs(g.base[3] - 0.6) < 1e-6 && abs(g.base[17] - 0.8) < 1e-6 && g.base[0] == 0)
        #expect(abs(Numerics.sumOfSquares(g.base, count: 20).squareRoot() - 1) < 1e-5)
        let before = Array(UnsafeBufferPointer(start: g.base, count: 20))
        Numerics.clip(g.base, count: 20, norm: 1, maxNorm: 2)
        #expect(Array(UnsafeBufferPointer(start: g.base, count: 20)) == before)
        // A non-finite element makes the sum of squares non-finite.
        g.base[5] = .nan
        #expect(!Numerics.sumOfSquares(g.base, count: 20).isFinite)
    }

    @Test("the gradient norm on the worker pool has the serial loop's bits, on 1, 2 and 3 threads")
    func pooledSumOfSquares() {
        defer { RankThreads.set(1) }
        let n = 1_364_784
        let g = FloatBuffer(count: n)
        var state: UInt64 = 12345
        for i in 0..<n {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            g.base[i] = Float(Int32(truncatingIfNeeded: state >> 32)) / 2e9
        }
        let blocks = UnsafeMutablePointer<Float>.allocate(capacity: Numerics.blocks(n))
        defer { blocks.deallocate() }
        for threads in [1, 2, 3] {
            RankThreads.set(threads)
            for count in [0, 1, 1023, 1024, 1025, 32 * 1024 + 7, n] {
                let serial = Numerics.sumOfSquares(g.base, count: count)
                let pooled = Numerics.sumOfSquares(g.base, count: count, blockSums: blocks)
                #expect(pooled.bitPattern == serial.bitPattern, "\(threads) threads, \(count) floats: \(pooled) vs \(serial)")
            }
            // A far-off element in the last block still counts.
            g.base[n - 1] = .infinity
            #expect(!Numerics.sumOfSquares(g.base, count: n, blockSums: blocks).isFinite)
            g.base[n - 1] = 0.5
        }
        #expect(Numerics.sumOfSquares(g.base, count: 1025, blockSums: blocks) > 0)
    }

    @Test("AdamW decay: p <- p (1 - lr wd) - Adam step; weight_decay 0 is plain Adam bit for bit")
    func weightDecay() {
        let n = 19
        let p1 = FloatBuffer(count: n), p2 = FloatBuffer(count: n), g = FloatBuffer(count: n)
        for i in 0..<n { p1.base[i] = Float(i) * 0.1 - 0.7; p2.base[i] = p1.base[i]; g.base[i] = Float(i % 5) - 2 }
        let plain = Adam(count: n, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        let decayed = Adam(count: n, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        decayed.weightDecay = 0.5
        plain.update(p1.base, g.base, count: n)
        decayed.update(p2.base, g.base, count: n)
        for i in 0..<n {
            // First Adam step moves each parameter by lr * sign(g) (m / sqrt(v) = +-1 after bias correction).
            let x0 = Float(i) * 0.1 - 0.7
            let step: Float = g.base[i] == 0 ? 0 : 0.01 * (g.base[i] > 0 ? 1 : -1)
            #expect(abs(p1.base[i] - (x0 - step)) < 1e-6)
            #expect(abs(p2.base[i] - (x0 * (1 - 0.01 * 0.5) - step)) < 1e-6)
        }
    }
}
