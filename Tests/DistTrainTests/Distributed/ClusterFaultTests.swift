import Foundation
import Testing
@testable import DistTrain
@testable import DistTrainIO

/// The watchdog's judgement, checkpoint checksums and exit statuses, without MPI or clocks:
/// the watchdog is driven with explicit times and a channel that delivers by hand. The real
/// jobs (stalls, signals, restarts, corruption, the lock) are in scripts/cluster-faults.sh.
struct ClusterFaultTests {
    /// Heartbeats delivered by the test.
    final class HandChannel: HeartbeatChannel {
        var published: [(Int64, Int64)] = []
        var inbox: [(Int, Int64, Int64)] = []
        func publish(sequence: Int64, step: Int64) -> Bool { published.append((sequence, step)); return true }
        /// Every rank in `inbox` keeps sending (a live watchdog sends at every check); remove one to silence it.
        func receive(_ body: (Int, Int64, Int64) -> Void) { for m in inbox { body(m.0, m.1, m.2) } }
        func close() {}
    }

    func watchdog(rank: Int, size: Int, timeout: Double = 60) -> (StallWatchdog, CollectiveProgress, HandChannel) {
        let progress = CollectiveProgress()
        let channel = HandChannel()
        let w = StallWatchdog(rank: rank, size: size, timeout: timeout, progress: progress, channel: channel) { _ in fatalError("no abort in tests") }
        return (w, progress, channel)
    }

    /// Checks once a second from `from` up to `to` seconds (as the thread does); returns the last verdict.
    @discardableResult
    func tick(_ w: StallWatchdog, from: Double, to: Double) -> StallWatchdog.Verdict {
        var t = from
        var last = StallWatchdog.Verdict.fine
        while t < to { last = w.check(now: Int64(t * 1e9)); t += 1 }
        return w.check(now: Int64(to * 1e9))
    }

    /// Puts `progress` inside collective number `sequence` of `step`, entered at `t` seconds.
    func enter(_ progress: CollectiveProgress, sequence: Int64, step: Int64, at t: Double) {
        progress.sequence.store(sequence, ordering: .relaxed)
        progress.step.store(step, ordering: .relaxed)
        progress.enteredAt.store(Int64(t * 1e9), ordering: .relaxed)
    }

    @Test("the lowest waiting rank warns at half the timeout and fails at the full time, naming the missing rank")
    func namesTheMissingRank() {
        let (w, progress, channel) = watchdog(rank: 0, size: 4)
        channel.inbox = [(1, 10, 5), (2, 9, 4), (3, 10, 5)]
        enter(progress, sequence: 10, step: 5, at: 100)
        #expect(tick(w, from: 100, to: 129) == .fine)
        guard case let .warn(line) = w.check(now: Int64(130 * 1e9)) else { Issue.record("no warning at half"); return }
        #expect(line.contains("rank 2 has not reached the collective of step 5 after 30 s"), "\(line)")
        #expect(line.contains("rank 2 last reported step 4"), "\(line)")
        #expect(w.check(now: Int64(131 * 1e9)) == .fine, "warned twice")
        #expect(tick(w, from: 132, to: 159) == .fine)
        guard case let .fail(error?) = w.check(now: Int64(160 * 1e9)) else { Issue.record("no failure at the timeout"); return }
        #expect(error.hasPrefix("disttrain: error: stalled: rank 2 did not reach the collective of step 5 within 60 s"), "\(error)")
        #expect(channel.published.last.map { $0.0 == 10 && $0.1 == 5 } == true)
    }

    @Test("a stalled rank 0 is reported by rank 1; rank 2 waits for rank 1 to report, then aborts silently")
    func stalledRankZero() {
        let (w1, p1, c1) = watchdog(rank: 1, size: 3)
        let (w2, p2, c2) = watchdog(rank: 2, size: 3)
        c1.inbox = [(0, 6, 3), (2, 7, 4)]
        c2.inbox = [(0, 6, 3), (1, 7, 4)]
        enter(p1, sequence: 7, step: 4, at: 100)
        enter(p2, sequence: 7, step: 4, at: 100)
        tick(w1, from: 100, to: 129)
        guard case let .warn(line) = w1.check(now: Int64(130 * 1e9)) else { Issue.record("rank 1 did not warn"); return }
        #expect(line.contains("rank 0 has not reached"), "\(line)")
        #expect(tick(w2, from: 100, to: 130) == .fine, "rank 2 is not the reporter")
        if case .fail = tick(w1, from: 131, to: 160) {} else { Issue.record("rank 1 did not fail") }
        #expect(tick(w2, from: 131, to: 160) == .fine, "rank 2 gives the reporter time")
        if case .fail = tick(w2, from: 161, to: 160 + w2.grace) {} else { Issue.record("rank 2 never aborts") }
    }

    @Test("ranks waiting in different collectives agree on one reporter: the lowest rank past the stalled one")
    func oneReporterAcrossCollectives() {
        // Rank 3 stopped before collective 9; rank 0 waits in 9, rank 1 finished its part of 9 and waits in 10.
        let (w0, p0, c0) = watchdog(rank: 0, size: 4)
        let (w1, p1, c1) = watchdog(rank: 1, size: 4)
        let (w2, p2, c2) = watchdog(rank: 2, size: 4)
        c0.inbox = [(1, 10, 5), (2, 9, 5), (3, 8, 4)]
        c1.inbox = [(0, 9, 5), (2, 9, 5), (3, 8, 4)]
        c2.inbox = [(0, 9, 5), (1, 10, 5), (3, 8, 4)]
        enter(p0, sequence: 9, step: 5, at: 100)
        enter(p1, sequence: 10, step: 5, at: 100)
        enter(p2, sequence: 9, step: 5, at: 100)
        var reports = 0
        for w in [w0, w1, w2] {
            if case .fail = tick(w, from: 100, to: 160) { reports += 1 }
        }
        #expect(reports == 1, "\(reports) ranks reported the stall at the timeout")
        guard case let .fail(line?) = w0.check(now: Int64(161 * 1e9)) else { Issue.record("rank 0 is not the reporter"); return }
        #expect(line.contains("rank 3 did not reach"), "\(line)")
    }

    @Test("a rank stopped inside the collective is named once its heartbeats stop, and a silent rank 0 is not the reporter")
    func silentRankInsideTheCollective() {
        // Every rank entered collective 12; rank 0 was then stopped (its last heartbeat at t = 100).
        let (w1, p1, c1) = watchdog(rank: 1, size: 3, timeout: 4)
        let (w2, p2, c2) = watchdog(rank: 2, size: 3, timeout: 4)
        c1.inbox = [(0, 12, 6), (2, 12, 6)]
        c2.inbox = [(0, 12, 6), (1, 12, 6)]
        enter(p1, sequence: 12, step: 6, at: 100)
        enter(p2, sequence: 12, step: 6, at: 100)
        #expect(w1.check(now: Int64(100 * 1e9)) == .fine)
        #expect(w2.check(now: Int64(100 * 1e9)) == .fine)
        c1.inbox = [(2, 12, 6)]
        c2.inbox = [(1, 12, 6)]
        var warning: String?
        for ms in stride(from: Int64(100_200), through: 102_000, by: 200) {  // checks every 0.2 s
            if case let .warn(line) = w1.check(now: ms * 1_000_000) { warning = line }
            #expect(w2.check(now: ms * 1_000_000) == .fine, "rank 2 is not the reporter")
        }
        #expect(warning?.hasPrefix("disttrain: warning: rank 0 has not completed the collective of step 6 after 2 s") == true, "\(warning ?? "no warning")")
        #expect(warning?.contains("no heartbeat for") == true, "\(warning ?? "")")
        var error: String?
        for ms in stride(from: Int64(102_200), through: 104_000, by: 200) {
            if case let .fail(line?) = w1.check(now: ms * 1_000_000) { error = line; break }
        }
        #expect(error?.hasPrefix("disttrain: error: stalled: rank 0 did not complete the collective of step 6 within 4 s") == true, "\(error ?? "no error")")
    }

    @Test("a rank stopped while sending heartbeats (views of its count differ) is reported once, by one rank, and alone")
    func stoppedRankWithDifferingLastHeartbeats() {
        // Rank 2 of 4 was stopped after telling ranks 1 and 3 it had entered collective 9 but before
        // telling rank 0 (which last heard 8). Rank 1 finished its part of 9 and waits in 10; ranks
        // 0 and 3 wait in 9. Rank 0 is behind rank 1 only because it waits for rank 2.
        let views = (0..<4).filter { $0 != 2 }.map { watchdog(rank: $0, size: 4, timeout: 4) }
        let sequences: [Int64] = [9, 10, 0, 9]
        let lastOfRank2: [Int64] = [8, 9, 0, 9]
        for (w, p, c) in views {
            let r = w.rank
            c.inbox = (0..<4).filter { $0 != r }.map { ($0, $0 == 2 ? lastOfRank2[r] : sequences[$0], 5) }
            enter(p, sequence: sequences[r], step: 5, at: 100)
            #expect(w.check(now: Int64(100 * 1e9)) == .fine)
            c.inbox.removeAll { $0.0 == 2 }
        }
        var errors: [Int: String] = [:]
        var warnings: [Int: String] = [:]
        for ms in stride(from: Int64(100_200), through: 104_000, by: 200) {  // checks every 0.2 s
            for (w, _, _) in views {
                switch w.check(now: ms * 1_000_000) {
                case .fine: break
                case let .warn(line): warnings[w.rank] = line
                case let .fail(line): errors[w.rank] = line ?? ""
                }
            }
        }
        #expect(errors.count == 1, "\(errors)")
        #expect(warnings.count == 1, "\(warnings)")
        for line in Array(errors.values) + Array(warnings.values) {
            #expect(line.contains("rank 2 ") && !line.contains("rank 0") && !line.contains("ranks "), "\(line)")
        }
        #expect(errors.values.first?.hasPrefix("disttrain: error: stalled: rank 2 did not") == true, "\(errors)")
    }

    @Test("outside a collective, or when every rank has arrived and the wait is short, nothing happens")
    func quietWhenFine() {
        let (w, progress, channel) = watchdog(rank: 0, size: 2, timeout: 10)
        channel.inbox = [(1, 3, 2)]
        progress.sequence.store(3, ordering: .relaxed)
        #expect(tick(w, from: 0, to: 1000) == .fine)
        enter(progress, sequence: 3, step: 2, at: 1000)
        #expect(tick(w, from: 1001, to: 1004) == .fine)
        // Every rank arrived but the collective hangs (a network problem): still stops, without naming a rank.
        #expect(tick(w, from: 1005, to: 1009) == .fine)
        guard case let .fail(line?) = w.check(now: Int64(1010 * 1e9)) else { Issue.record("no failure"); return }
        #expect(line.contains("every rank reached the collective of step 2"), "\(line)")
    }

    @Test("a rank that was stopped itself and continued counts its wait from the moment it resumed")
    func stoppedRankDoesNotBlameOthers() {
        let (w, progress, channel) = watchdog(rank: 0, size: 2, timeout: 4)
        channel.inbox = [(1, 5, 3)]
        enter(progress, sequence: 6, step: 4, at: 10)
        #expect(tick(w, from: 10, to: 11) == .fine)
        // No check for 100 s (this process was stopped), then it continues: no verdict yet.
        #expect(w.check(now: Int64(111 * 1e9)) == .fine)
        #expect(w.check(now: Int64(112 * 1e9)) == .fine)
        if case .warn = w.check(now: Int64(113 * 1e9)) {} else { Issue.record("no warning 2 s after resuming") }
    }

    func checkpointDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "disttrain-integrity-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // As the trainer does: the record from what the writes reported, the same as reading back.
        let written = [
            "model.safetensors": try AtomicFile.write((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, to: dir + "/model.safetensors"),
            "optimizer.safetensors": try AtomicFile.write(Array(repeating: 9, count: 2000), to: dir + "/optimizer.safetensors"),
        ]
        let files = try CheckpointIntegrity.record(written)
        var onDisk: [String: WrittenFile] = [:]
        for name in CheckpointIntegrity.dataFiles {
            let bytes = try FileBytes.read(dir + "/" + name)
            onDisk[name] = WrittenFile(bytes: bytes.count, crc32c: CRC32C.checksum(bytes))
        }
        #expect(files == (try CheckpointIntegrity.record(onDisk)))
        try AtomicFile.write(CheckpointIntegrity.sealed(TrainerState().json.adding("files", files)), to: dir + "/trainer.json")
        return dir
    }

    @Test("checksums in trainer.json find a flipped byte, a truncated file and a missing file")
    func integrity() throws {
        let dir = try checkpointDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(CheckpointIntegrity.verify(directory: dir) == .intact(files: ["model.safetensors", "optimizer.safetensors"]))

        var model = try FileBytes.read(dir + "/model.safetensors")
        model[500] ^= 0x40
        try AtomicFile.write(model, to: dir + "/model.safetensors")
        guard case let .damaged(file, problem) = CheckpointIntegrity.verify(directory: dir) else { Issue.record("flip not found"); return }
        #expect(file == dir + "/model.safetensors" && problem.hasPrefix("corrupted: CRC32C"), "\(file): \(problem)")
        model[500] ^= 0x40
        try AtomicFile.write(model, to: dir + "/model.safetensors")

        try AtomicFile.write(Array(repeating: 9, count: 1500), to: dir + "/optimizer.safetensors")
        #expect(CheckpointIntegrity.verify(directory: dir) == .damaged(file: dir + "/optimizer.safetensors", problem: "truncated: 1500 bytes, trainer.json records 2000"))
        unlink(dir + "/optimizer.safetensors")
        #expect(CheckpointIntegrity.verify(directory: dir) == .damaged(file: dir + "/optimizer.safetensors", problem: "missing"))

        // A changed digit still parses: trainer.json's own checksum finds it.
        try AtomicFile.write(Array(repeating: 9, count: 2000), to: dir + "/optimizer.safetensors")
        let sealed = try FileBytes.read(dir + "/trainer.json")
        var state = TrainerState()
        state.globalStep = 468
        let files = try #require(try JSON.parse(bytes: sealed)["files"])
        let original = CheckpointIntegrity.sealed(state.json.adding("files", files))
        try AtomicFile.write(original, to: dir + "/trainer.json")
        #expect(CheckpointIntegrity.verify(directory: dir) == .intact(files: ["model.safetensors", "optimizer.safetensors"]))
        let text = String(decoding: original, as: UTF8.self)
        let flipped = text.replacingOccurrences(of: "468", with: "478")
        #expect(flipped != text)
        try AtomicFile.write(Array(flipped.utf8), to: dir + "/trainer.json")
        guard case let .damaged(file3, problem3) = CheckpointIntegrity.verify(directory: dir) else { Issue.record("changed digit not found"); return }
        #expect(file3 == dir + "/trainer.json" && problem3.hasPrefix("corrupted: CRC32C of its fields"), "\(file3): \(problem3)")

        try AtomicFile.write(Array("{\"format\": \"disttrain.trai".utf8), to: dir + "/trainer.json")
        guard case let .damaged(file2, _) = CheckpointIntegrity.verify(directory: dir) else { Issue.record("bad trainer.json not found"); return }
        #expect(file2 == dir + "/trainer.json")
    }

    @Test("a checkpoint without checksums is unchecked, not damaged")
    func olderCheckpoint() throws {
        let dir = try checkpointDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try AtomicFile.write(Array(TrainerState().json.pretty.utf8), to: dir + "/trainer.json")
        #expect(CheckpointIntegrity.verify(directory: dir) == .unchecked)
    }

    @Test("exit statuses: bad input, stop, stall and the rest")
    func exitStatuses() {
        #expect(ExitStatus.of(ConfigError.invalidValue(field: "x", reason: "y")) == .badInput)
        #expect(ExitStatus.of(CheckpointError.damaged(path: "p", reason: "r")) == .badInput)
        #expect(ExitStatus.of(RunLockError.held(directory: "d", holder: "h")) == .runLocked)
        #expect(ExitStatus.of(StopRequested(step: 1, epoch: 1, checkpoint: "c", signal: 15)) == .stopped)
        #expect(ExitStatus.of(PeerFailure(rank: 1, status: .badInput)) == .badInput)
        #expect(ExitStatus.of(SharedFailure(message: "nan")) == .failure)
        #expect(Set(ExitStatus.allCases.map(\.rawValue)).count == ExitStatus.allCases.count)
    }
}
