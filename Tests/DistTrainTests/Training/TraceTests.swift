import Foundation
import Logging
import Models
import Synchronization
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// The step trace (--trace) and the straggler summary.
@Suite struct TraceTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test("--trace-steps ranges")
    func ranges() {
        #expect(parseStepRange("3-7") == 3...7)
        #expect(parseStepRange("5") == 5...5)
        #expect(parseStepRange("0-3") == nil && parseStepRange("7-3") == nil && parseStepRange("a-b") == nil && parseStepRange("1-") == nil)
    }

    @Test("a trace parses as trace-event JSON with every phase on every rank's track", arguments: [AllreduceMode.overlap, .single])
    func traceHasEveryPhase(mode: AllreduceMode) throws {
        let ranks = 2
        let root = NSTemporaryDirectory() + "disttrain-trace-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "-trace.json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let quiet = self.quiet
        try LocalCommunicator.run(ranks: ranks) { comm in
            var c = Support.smallConfig(out: root)
            c.training.maxSteps = 8
            c.runtime.allreduce = mode
            c.runtime.bucketMB = 0.01   // several buckets
            var options = TrainOptions()
            options.printEpochs = false
            options.tensorboard = false
            options.tracePath = path
            options.traceSteps = 3...8
            let t = try Trainer(config: c, comm: comm, options: options, logger: quiet)
            try t.fit()
        }
        let json = try JSON.parse(bytes: Array(try String(contentsOfFile: path, encoding: .utf8).utf8))
        guard case let .array(events)? = json["traceEvents"] else { Issue.record("no traceEvents array"); return }
        var seen: [Int: Set<String>] = [:]
        var steps: Set<Int> = []
        for e in events {
            guard case .string("X")? = e["ph"] else { continue }
            guard case let .number(pid)? = e["pid"], case let .string(name)? = e["name"], case let .number(ts)? = e["ts"],
                  case let .number(dur)? = e["dur"] else { Issue.record("event without pid/name/ts/dur"); continue }
            #expect(ts >= 0 && dur >= 0)
            seen[Int(pid), default: []].insert(name.hasPrefix("bucket ") ? "bucket allreduce" : name)
            if case let .number(s)? = e["args"]?["step"] { steps.insert(Int(s)) }
        }
        let phases: Set<String> = ["batch filling", "forward", "backward", "bucket allreduce", "allreduce wait", "optimizer",
                                   "evaluation", "checkpoint write"]
        for rank in 0..<ranks { #expect(seen[rank] == phases, "rank \(rank): \(seen[rank] ?? [])") }
        #expect(steps == Set(3...8), "traced steps \(steps.sorted())")
        let metrics = try String(contentsOfFile: root + "/metrics.jsonl", encoding: .utf8)
        let line = try JSON.parse(String(metrics.split(separator: "\n").last!))
        guard case let .array(byRank)? = line["rank_step_ms"] else { Issue.record("no rank_step_ms"); return }
        #expect(byRank.count == ranks)
        #expect(line["slowest_rank"] != nil && line["straggler_lag_ms"] != nil)
        if case let .number(g)? = line["grad_norm_mean"], case let .number(m)? = line["grad_norm_max"] {
            #expect(g > 0 && m >= g)
        } else { Issue.record("no gradient norm in metrics") }
    }

    @Test("a sharded optimizer with overlap traces each bucket's reduce-scatter and each parameter range's allgather, every traced step, on every rank")
    func shardedTraceHasEveryBucket() throws {
        let ranks = 3
        let root = NSTemporaryDirectory() + "disttrain-trace-zero-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "-trace.json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let quiet = self.quiet
        let bucketCount = Mutex(0)
        try LocalCommunicator.run(ranks: ranks) { comm in
            var c = Support.smallConfig(out: root)
            c.training.maxSteps = 5
            c.runtime.allreduce = .overlap
            c.runtime.bucketMB = 0.01   // several buckets
            c.runtime.shardOptimizer = true
            var options = TrainOptions()
            options.printEpochs = false
            options.tensorboard = false
            options.tracePath = path
            options.traceSteps = 2...5
            let t = try Trainer(config: c, comm: comm, options: options, logger: quiet)
            if comm.rank == 0 { bucketCount.withLock { $0 = t.reducer.buckets.count } }
            try t.fit()
        }
        let buckets = bucketCount.withLock { $0 }
        #expect(buckets >= 2)
        let json = try JSON.parse(bytes: Array(try String(contentsOfFile: path, encoding: .utf8).utf8))
        guard case let .array(events)? = json["traceEvents"] else { Issue.record("no traceEvents array"); return }
        var seen: [Int: [String]] = [:]
        var firstBucketStart: [String: Double] = [:], backwardEnd: [String: Double] = [:]
        var gathered: [Int: Set<String>] = [:], waits: [String: [(Double, Double)]] = [:], forwards: [String: (Double, Double)] = [:]
        var gatherTrackNamed = Set<Int>()
        for e in events {
            guard case .string("X")? = e["ph"], case let .number(pid)? = e["pid"], case let .string(name)? = e["name"],
                  case let .number(tid)? = e["tid"], case let .number(step)? = e["args"]?["step"],
                  case let .number(ts)? = e["ts"], case let .number(dur)? = e["dur"] else { continue }
            #expect(!name.hasSuffix(" allreduce"), "sharded run traced \(name)")
            let key = "\(Int(pid)) \(Int(step))"
            if name.hasSuffix(" reduce-scatter") {
                #expect(tid == 1)
                seen[Int(pid), default: []].append("\(Int(step)) \(name)")
                if name == "bucket 0 reduce-scatter" { firstBucketStart[key] = ts }
            }
            if name == "backward" { backwardEnd[key] = ts + dur }
            if name.hasPrefix("range ") {
                #expect(name.hasSuffix(" allgather") && tid == 2, "\(name) on track \(tid)")
                gathered[Int(pid), default: []].insert("\(Int(step)) \(name)")
            }
            if name == "allgather wait" { #expect(tid == 0); waits[key, default: []].append((ts, ts + dur)) }
            if name == "forward" { forwards[key] = (ts, ts + dur) }
        }
        for e in events {
            if case .string("M")? = e["ph"], case .string("parameter allgathers")? = e["args"]?["name"], case let .number(pid)? = e["pid"] {
                gatherTrackNamed.insert(Int(pid))
            }
        }
        // ZeRO-1's gathers: every range of the gathers each traced step's forward waited for
        // (started after the previous step's Adam), on every rank's gathers track; the waits
        // lie inside forward (the first layer's range at least is waited for every step).
        let ranges = (0..<buckets).map { "range \($0) allgather" }
        for rank in 0..<ranks {
            #expect(gatherTrackNamed.contains(rank), "rank \(rank) has no parameter allgathers track")
            for step in 2...5 {
                #expect(ranges.allSatisfy { gathered[rank]?.contains("\(step) \($0)") == true }, "rank \(rank) step \(step): \(gathered[rank] ?? [])")
                let key = "\(rank) \(step)"
                #expect(waits[key]?.isEmpty == false, "rank \(rank) step \(step): no allgather wait")
                if let f = forwards[key] {
                    for (a, b) in waits[key] ?? [] { #expect(a >= f.0 - 0.01 && b <= f.1 + 0.01, "wait \(a)-\(b) outside forward \(f)") }
                } else { Issue.record("rank \(rank) step \(step): no forward event") }
            }
        }
        let expected = (2...5).flatMap { step in (0..<buckets).map { "\(step) bucket \($0) reduce-scatter" } }.sorted()
        for rank in 0..<ranks { #expect(seen[rank]?.sorted() == expected, "rank \(rank): \(seen[rank] ?? [])") }
        // Overlap: the first bucket's reduce-scatter starts inside backward, not after it.
        #expect(firstBucketStart.count == ranks * 4)
        for (key, start) in firstBucketStart {
            #expect(start < backwardEnd[key] ?? -1, "rank and step \(key): bucket 0 started at \(start), backward ended at \(backwardEnd[key] ?? -1)")
        }
    }
}
