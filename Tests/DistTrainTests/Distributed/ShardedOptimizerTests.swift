import Foundation
import Logging
import Models
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// ZeRO-1 (runtime.shard_optimizer) on in-process ranks: the sliced collectives against hand
/// values, and training with a sharded optimizer against the unsharded one.
@Suite struct ShardedOptimizerTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test("slices: even and uneven splits cover the parameters")
    func slices() {
        #expect(ShardPlan.counts(parameters: 10, ranks: 4) == [3, 3, 2, 2])
        #expect(ShardPlan.counts(parameters: 2, ranks: 3) == [1, 1, 0])
        #expect(ShardPlan.counts(parameters: 12, ranks: 3) == [4, 4, 4])
    }

    @Test("reduce-scatter and allgather with uneven (and empty) slices", arguments: [1, 2, 3, 4])
    func slicedCollectives(ranks: Int) throws {
        try LocalCommunicator.run(ranks: ranks) { comm in
            for total in [11, 2, 1000] {
                let counts = ShardPlan.counts(parameters: total, ranks: ranks)
                let offset = counts[..<comm.rank].reduce(0, +)
                let b = FloatBuffer(count: total)
                for i in 0..<total { b.base[i] = Float(i) + Float(comm.rank) * 1000 }
                comm.reduceScatterSum(b.base, counts: counts)
                let rankSum = Float((0..<ranks).reduce(0, +)) * 1000
                for i in offset..<(offset + counts[comm.rank]) {
                    #expect(b.base[i] == Float(i * ranks) + rankSum, "rank \(comm.rank) element \(i)")
                }
                // Each rank writes its slice; allgather makes every rank hold all of them.
                for i in offset..<(offset + counts[comm.rank]) { b.base[i] = -Float(i) }
                comm.allgather(b.base, counts: counts)
                #expect((0..<total).allSatisfy { b.base[$0] == -Float($0) })
                let h = UnsafeMutablePointer<UInt16>.allocate(capacity: total)
                for i in 0..<total { h[i] = BFloat16.round(Float(i % 7)) }
                comm.reduceScatterSumBF16(h, counts: counts)
                for i in offset..<(offset + counts[comm.rank]) { #expect(BFloat16.widen(h[i]) == Float((i % 7) * ranks)) }
                h.deallocate()
            }
        }
    }

    @Test("a range's shares: its intersection with each rank's slice, zero where it misses one")
    func rangeShares() {
        let counts = ShardPlan.counts(parameters: 23, ranks: 4)  // slices 0..<6, 6..<12, 12..<18, 18..<23
        #expect(counts == [6, 6, 6, 5])
        #expect(ShardPlan.shares(of: 3..<17, counts: counts) == [3, 6, 5, 0])
        #expect(ShardPlan.shares(of: 20..<21, counts: counts) == [0, 0, 0, 1])
        #expect(ShardPlan.shares(of: 6..<12, counts: counts) == [0, 6, 0, 0])
        #expect(ShardPlan.shares(of: 0..<23, counts: counts) == counts)
        #expect(ShardPlan.shares(of: 5..<5, counts: counts) == [0, 0, 0, 0])
    }

    @Test("non-blocking reduce-scatter of a bucket: each rank receives its slice's part, zero shares included", arguments: [1, 2, 3, 4])
    func bucketReduceScatter(ranks: Int) throws {
        try LocalCommunicator.run(ranks: ranks) { comm in
            let total = 23
            let counts = ShardPlan.counts(parameters: total, ranks: ranks)
            let sliceStart = counts[..<comm.rank].reduce(0, +)
            let b = FloatBuffer(count: total)
            let h = UnsafeMutablePointer<UInt16>.allocate(capacity: total)
            defer { h.deallocate() }
            for i in 0..<total { b.base[i] = Float(i) + Float(comm.rank) * 100; h[i] = BFloat16.round(Float(i % 5 + comm.rank)) }
            // Buckets that start and end inside slices, one element, and the whole buffer.
            for bucket in [3..<17, 20..<21, 0..<total] {
                let shares = ShardPlan.shares(of: bucket, counts: counts)
                #expect(shares.reduce(0, +) == bucket.count)
                let mineLow = max(bucket.lowerBound, sliceStart)
                let received = FloatBuffer(count: max(shares[comm.rank], 1))
                let receivedHalf = UnsafeMutablePointer<UInt16>.allocate(capacity: max(shares[comm.rank], 1))
                defer { receivedHalf.deallocate() }
                comm.startReduceScatterSum(b.base + bucket.lowerBound, into: received.base, counts: shares)
                comm.startReduceScatterSumBF16(h + bucket.lowerBound, into: receivedHalf, counts: shares)
                comm.waitAll()
                let rankSum = Float((0..<ranks).reduce(0, +))
                for k in 0..<shares[comm.rank] {
                    let i = mineLow + k
                    #expect(received.base[k] == Float(i * ranks) + rankSum * 100, "rank \(comm.rank) bucket \(bucket) element \(i)")
                    #expect(BFloat16.widen(receivedHalf[k]) == Float((i % 5) * ranks) + rankSum, "bf16 rank \(comm.rank) element \(i)")
                }
            }
        }
    }

    /// Parameters after `steps` steps on `ranks` in-process ranks.
    func train(ranks: Int, shard: Bool, steps: Int, dir: String, options extra: TrainOptions = TrainOptions(),
               mutate: @escaping @Sendable (inout TrainConfig) -> Void = { _ in }) throws -> [Float] {
        let out = LocalCommunicatorTests.Results(ranks)
        let quiet = self.quiet
        try LocalCommunicator.run(ranks: ranks) { comm in
            var c = Support.smallConfig(out: dir)
            c.training.maxSteps = steps
            c.training.epochs = 2
            c.runtime.shardOptimizer = shard
            mutate(&c)
            var options = extra
            options.printEpochs = false
            options.tensorboard = false
            let t = try Trainer(config: c, comm: comm, options: options, logger: quiet)
            let firstStep = t.state.globalStep
            try t.fit()
            if shard { #expect(t.adam.m.count == ShardPlan.counts(parameters: t.params.count, ranks: ranks)[comm.rank]) }
            // Sharded with overlap on several ranks: the parameters were gathered range by range,
            // one start per step, and forward waited for them in every step but the first one and
            // those after an epoch end (evaluation waits for the gathers first). The in-process
            // gathers move only when waited for, so a read before its wait changes the result.
            let overlapped = shard && ranks > 1 && c.runtime.allreduce == .overlap && c.runtime.overlapAllgather
            #expect((t.gather != nil) == overlapped)
            if let g = t.gather {
                let steps = t.state.globalStep - firstStep
                #expect(g.gathersStarted == steps * g.ranges.count && g.waitsInForward >= steps - 1 - c.training.epochs && !g.outstanding,
                        "\(g.gathersStarted) gathers, \(g.waitsInForward) waits in forward over \(steps) steps")
            }
            out.set(comm.rank, Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count)))
        }
        for r in 1..<ranks { #expect(out.values[r]! == out.values[0]!, "rank \(r) differs from rank 0") }
        return out.values[0]!
    }

    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        var d = 0.0, n = 0.0
        for i in a.indices { d += Double(a[i] - b[i]) * Double(a[i] - b[i]); n += Double(b[i]) * Double(b[i]) }
        return (d / n).squareRoot()
    }

    /// `allreduce` mode with small buckets (several per model, cut inside the ranks' slices).
    static func mode(_ mode: AllreduceMode, wire: WirePrecision = .fp32) -> @Sendable (inout TrainConfig) -> Void {
        { c in
            c.runtime.allreduce = mode
            c.runtime.bucketMB = 0.01
            c.runtime.wire = wire
        }
    }

    @Test("sharded Adam ends where unsharded Adam does after 100 steps (1-4 ranks, uneven slices, single and per-bucket overlapped reduce-scatter)",
          arguments: [1, 2, 3, 4], [AllreduceMode.single, .overlap])
    func equivalence(ranks: Int, mode: AllreduceMode) throws {
        let root = NSTemporaryDirectory() + "disttrain-zero-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let plain = try train(ranks: ranks, shard: false, steps: 100, dir: root + "/plain", mutate: Self.mode(mode))
        let sharded = try train(ranks: ranks, shard: true, steps: 100, dir: root + "/sharded", mutate: Self.mode(mode))
        let rel = Self.relative(sharded, plain)
        #expect(rel < 1e-6, "\(ranks) ranks \(mode): relative difference \(rel)")
        // The checkpoints keep the full format: the same moments under the same names and shapes.
        let step = RunDirectory.checkpointName(step: 100)
        let a = try SafeTensors.read(path: root + "/plain/checkpoints/" + step + "/optimizer.safetensors")
        let b = try SafeTensors.read(path: root + "/sharded/checkpoints/" + step + "/optimizer.safetensors")
        #expect(a.names.sorted() == b.names.sorted())
        #expect(a.metadata["step"] == "100" && b.metadata["step"] == "100")
        var momentsA: [Float] = [], momentsB: [Float] = []
        for name in a.names.sorted() {
            #expect(a.shape(name) != nil && a.shape(name) == b.shape(name), "\(name)")
            momentsA += a.floats(name) ?? []
            momentsB += b.floats(name) ?? []
        }
        // Every exported parameter has both moments (the parameter buffer may hold unexported padding).
        let exported = try SafeTensors.read(path: root + "/sharded/checkpoints/" + step + "/model.safetensors").totalElements
        #expect(momentsA.count == 2 * exported && momentsB.count == momentsA.count, "\(momentsA.count) \(momentsB.count) moments, \(exported) parameters")
        let moments = Self.relative(momentsB, momentsA)
        #expect(moments < 1e-5, "\(ranks) ranks \(mode): Adam moments differ by \(moments)")
    }

    @Test("overlapped per-bucket reduce-scatter gives the single reduce-scatter's bits (in-process sums add in rank order), fp32 and bf16",
          arguments: [2, 3], [WirePrecision.fp32, .bf16])
    func overlapMatchesSingle(ranks: Int, wire: WirePrecision) throws {
        let root = NSTemporaryDirectory() + "disttrain-zero-ov-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let single = try train(ranks: ranks, shard: true, steps: 60, dir: root + "/single", mutate: Self.mode(.single, wire: wire))
        let overlap = try train(ranks: ranks, shard: true, steps: 60, dir: root + "/overlap", mutate: Self.mode(.overlap, wire: wire))
        #expect(overlap == single, "\(ranks) ranks \(wire): relative difference \(Self.relative(overlap, single))")
        let plain = try train(ranks: ranks, shard: false, steps: 60, dir: root + "/plain", mutate: Self.mode(.overlap, wire: wire))
        #expect(Self.relative(overlap, plain) < 1e-6, "\(ranks) ranks \(wire): sharded vs unsharded \(Self.relative(overlap, plain))")
    }

    @Test("overlapped parameter allgather (per range, waited for in forward) gives the blocking allgather's bits, fp32 and bf16",
          arguments: [2, 3, 4], [WirePrecision.fp32, .bf16])
    func overlappedGatherMatchesBlocking(ranks: Int, wire: WirePrecision) throws {
        let root = NSTemporaryDirectory() + "disttrain-zero-gather-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let blocking = try train(ranks: ranks, shard: true, steps: 60, dir: root + "/blocking") { c in
            Self.mode(.overlap, wire: wire)(&c)
            c.runtime.overlapAllgather = false
        }
        let overlapped = try train(ranks: ranks, shard: true, steps: 60, dir: root + "/overlapped", mutate: Self.mode(.overlap, wire: wire))
        let same = overlapped == blocking  // (not inside #expect: it would print both arrays)
        #expect(same, "\(ranks) ranks \(wire): relative difference \(Self.relative(overlapped, blocking))")
    }

    @Test("non-blocking allgather of parameter ranges: each waited range holds every rank's share, zero shares included", arguments: [1, 2, 3, 4])
    func rangeAllgather(ranks: Int) throws {
        try LocalCommunicator.run(ranks: ranks) { comm in
            let total = 23
            let counts = ShardPlan.counts(parameters: total, ranks: ranks)
            let sliceStart = counts[..<comm.rank].reduce(0, +)
            let mine = sliceStart..<(sliceStart + counts[comm.rank])
            let b = FloatBuffer(count: total)
            for i in 0..<total { b.base[i] = mine.contains(i) ? -Float(i) : Float(1000 + comm.rank) }
            let ranges = [0..<1, 1..<9, 9..<10, 10..<total]
            for r in ranges { comm.startAllgather(b.base + r.lowerBound, counts: ShardPlan.shares(of: r, counts: counts)) }
            comm.waitGather(1)
            #expect((0..<9).allSatisfy { b.base[$0] == -Float($0) }, "rank \(comm.rank): ranges 0 and 1 after waiting for range 1")
            #expect(comm.testGather(0) && comm.testGather(1))
            comm.waitAllGathers()
            #expect((0..<total).allSatisfy { b.base[$0] == -Float($0) }, "rank \(comm.rank): \((0..<total).map { b.base[$0] })")
            // The numbering restarts after waitAllGathers.
            for i in mine { b.base[i] = Float(i) }
            comm.startAllgather(b.base, counts: counts)
            comm.waitGather(0)
            #expect((0..<total).allSatisfy { b.base[$0] == Float($0) })
            comm.waitAllGathers()
        }
    }

    @Test("a 4-rank sharded checkpoint resumes at 2 ranks sharded and unsharded, and at 3 (uneven slices): the same result either way")
    func resumeOnAnotherWorldSize() throws {
        let root = NSTemporaryDirectory() + "disttrain-zero-world-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let four = try train(ranks: 4, shard: true, steps: 50, dir: root + "/four", mutate: Self.mode(.overlap))
        let checkpoint = root + "/four/checkpoints/" + RunDirectory.checkpointName(step: 50)
        // Mid-epoch on another world size: every resumed run restarts at the next epoch's start.
        var options = TrainOptions()
        options.resumeFrom = checkpoint
        var results: [String: [Float]] = [:]
        for (ranks, shard, mode) in [(2, true, AllreduceMode.overlap), (2, false, .overlap), (2, true, .single),
                                     (3, true, .overlap), (3, false, .single)] {
            let name = "\(ranks)-\(shard ? "sharded" : "plain")-\(mode)"
            results[name] = try train(ranks: ranks, shard: shard, steps: 100, dir: root + "/" + name, options: options, mutate: Self.mode(mode))
            let state = try JSON.parse(try String(contentsOfFile: root + "/" + name + "/checkpoints/" + RunDirectory.checkpointName(step: 100) + "/trainer.json", encoding: .utf8))
            #expect(state["world_size"] == .number(Double(ranks)) && state["global_step"] == .number(100), "\(name)")
        }
        let reference = results["2-plain-overlap"]!
        for name in ["2-sharded-overlap", "2-sharded-single"] {
            #expect(Self.relative(results[name]!, reference) < 1e-6, "\(name): \(Self.relative(results[name]!, reference))")
        }
        #expect(Self.relative(results["3-sharded-overlap"]!, results["3-plain-single"]!) < 1e-6)
        // Not vacuous: the resumed runs trained on from the checkpoint's weights.
        #expect(Self.relative(reference, four) > 1e-3)
        #expect(Self.relative(results["3-plain-single"]!, reference) > 1e-6, "3 and 2 ranks see different batches")
    }

    @Test("a sharded run resumed from a mid-epoch checkpoint ends bitwise where the uninterrupted sharded run does")
    func resume() throws {
        let root = NSTemporaryDirectory() + "disttrain-zero-resume-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try train(ranks: 3, shard: true, steps: 100, dir: root + "/straight")
        _ = try train(ranks: 3, shard: true, steps: 50, dir: root + "/cut")
        let resumed = LocalCommunicatorTests.Results(3)
        let quiet = self.quiet
        try LocalCommunicator.run(ranks: 3) { comm in
            var c = Support.smallConfig(out: root + "/cut")
            c.training.maxSteps = 100
            c.training.epochs = 2
            c.runtime.shardOptimizer = true
            var options = TrainOptions()
            options.printEpochs = false
            options.tensorboard = false
            options.resume = true
            let t = try Trainer(config: c, comm: comm, options: options, logger: quiet)
            try t.fit()
            resumed.set(comm.rank, Array(UnsafeBufferPointer(start: t.params.base, count: t.params.count)))
        }
        #expect(resumed.values[0]! == straight, "sharded resume is not bitwise")
    }
}
