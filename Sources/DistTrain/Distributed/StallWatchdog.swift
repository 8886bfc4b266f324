import Models
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where this rank stands in the sequence of collectives, written by the training thread
/// (two relaxed atomic stores per collective) and read by the watchdog thread.
///
/// Every rank makes the same collective calls in the same order, so the count of collectives
/// entered is comparable across ranks: a rank whose count is below mine has not reached the
/// collective I am waiting in.
final class CollectiveProgress: Sendable {
    /// Collectives entered so far.
    let sequence = Atomic<Int64>(0)
    /// Monotonic nanoseconds when the collective in progress was entered; 0 outside collectives.
    let enteredAt = Atomic<Int64>(0)
    /// Training step the collectives belong to (0: setup).
    let step = Atomic<Int64>(0)

    @inline(__always) func enter() {
        sequence.add(1, ordering: .relaxed)
        enteredAt.store(StallWatchdog.monotonicNanos(), ordering: .relaxed)
    }

    @inline(__always) func leave() { enteredAt.store(0, ordering: .relaxed) }
}

/// How the watchdog hears of the other ranks: non-blocking messages on a channel of its own,
/// never touching the training thread's collectives.
protocol HeartbeatChannel: AnyObject {
    /// Sends (sequence, step) to every other rank, skipping a rank whose previous heartbeat is
    /// still in flight; returns false when some rank was skipped. Called at every check, so a
    /// heartbeat is also a sign of life when nothing changed.
    func publish(sequence: Int64, step: Int64) -> Bool
    /// Hands over every heartbeat that arrived since the last call: (rank, sequence, step).
    func receive(_ body: (Int, Int64, Int64) -> Void)
    /// Withdraws what is still posted (the watchdog has stopped).
    func close()
}

/// The stall watchdog: a thread per rank, in the manner of Horovod's stall inspector.
///
/// MPI collectives cannot time out, and a rank that is stopped (SIGSTOP), stuck on a dead
/// mount or deadlocked looks to the others like a collective that never ends. Each rank's
/// watchdog thread wakes a few times a second, sends this rank's collective count and step to
/// every other rank on a duplicated communicator, and collects theirs. A rank that stops sending
/// (stopped or dead) while the others wait is named even when it had entered the collective.
/// When this rank has been inside one collective for half of `timeout` seconds, one reporter
/// (the lowest live rank past the live ranks' lowest collective count, or the lowest live rank
/// when their counts are equal) prints a warning naming the silent ranks, or when none is
/// silent the ranks that have not reached its collective, and the step; at `timeout` it prints
/// one error line and aborts the job
/// (`ExitStatus.stalled`). The other waiting ranks abort a little later should that reporter
/// itself be gone. A stalled rank's own watchdog is stalled with it (SIGSTOP stops every
/// thread) or sees nothing wrong (it is not waiting), so it is always another rank that reports,
/// rank 0 included.
///
/// The heartbeats are MPI point-to-point messages, so they go wherever the job's MPI goes
/// (shared memory, TCP across hosts), with no port, file or clock shared between hosts; times
/// are only ever compared on one host.
final class StallWatchdog: @unchecked Sendable {
    let rank: Int
    let size: Int
    let timeout: Double
    let progress: CollectiveProgress
    let channel: HeartbeatChannel
    let abort: (Int32) -> Never
    /// Last (sequence, step) heard from each rank.
    private(set) var heard: [(sequence: Int64, step: Int64)]
    /// Monotonic nanoseconds each rank's latest heartbeat arrived (from the first check on).
    private var heardAt: [Int64]
    private var warnedAt: Int64 = -1
    /// Time of the previous check, and of the last time this process was found to have been
    /// stopped itself (a gap between checks): waiting is counted from then, so a rank that was
    /// SIGSTOPped and continued does not blame the ranks it kept waiting.
    private var lastCheck: Int64 = 0
    private var resumedAt: Int64 = 0
    /// Seconds between checks of the thread.
    var interval: Double { min(1.0, max(0.05, timeout / 20)) }
    /// Extra time a waiting rank that is not the reporter gives the reporter before aborting.
    var grace: Double { max(5, timeout / 4) }
    /// Seconds without a heartbeat after which a rank counts as silent (its watchdog sends one
    /// per `interval` while it runs at all).
    var silence: Double { max(1, 4 * interval) }

    init(rank: Int, size: Int, timeout: Double, progress: CollectiveProgress, channel: HeartbeatChannel,
         abort: @escaping (Int32) -> Never) {
        self.rank = rank
        self.size = size
        self.timeout = timeout
        self.progress = progress
        self.channel = channel
        self.abort = abort
        heard = Array(repeating: (0, 0), count: size)
        heardAt = Array(repeating: 0, count: size)
    }

    static func monotonicNanos() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    /// Heap allocations made on watchdog threads (inside MPI's point-to-point calls: Open MPI
    /// grows its request lists now and then). The step loop's allocation count is process-wide,
    /// so StepTimer books these with MPI's, not as the step's own.
    static let allocations = Atomic<UInt64>(0)

    private var thread: pthread_t?
    private let stopping = Atomic<Bool>(false)

    /// Starts the thread; it runs until `stop()`.
    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let status = pthread_create(&t, nil, { raw in
            let watchdog = Unmanaged<StallWatchdog>.fromOpaque(raw!).takeRetainedValue()
            watchdog.run()
            return nil
        }, context)
        if status == 0 { thread = t }
    }

    /// Ends the thread and waits for it (before MPI_Finalize: it must make no MPI call after).
    func stop() {
        stopping.store(true, ordering: .relaxed)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
        channel.close()
    }

    private func run() {
        var next = Double(StallWatchdog.monotonicNanos()) / 1e9 + interval
        while !stopping.load(ordering: .relaxed) {
            usleep(20_000)
            let now = Double(StallWatchdog.monotonicNanos()) / 1e9
            guard now >= next else { continue }
            next = now + interval
            let allocated = ThreadAllocations.count
            let verdict = check(now: StallWatchdog.monotonicNanos())
            StallWatchdog.allocations.add(ThreadAllocations.count &- allocated, ordering: .relaxed)
            switch verdict {
            case .fine: break
            case let .warn(line): fputs(line + "\n", stderr)
            case let .fail(line):
                if let line { fputs(line + "\n", stderr) }
                abort(ExitStatus.stalled.rawValue)
            }
        }
    }

    enum Verdict: Equatable { case fine, warn(String), fail(String?) }

    /// One look at the state: exchange heartbeats, then judge how long this rank has waited.
    /// Pure apart from the channel, so tests drive it with their own clock.
    func check(now: Int64) -> Verdict {
        let sequence = progress.sequence.load(ordering: .relaxed)
        let step = progress.step.load(ordering: .relaxed)
        _ = channel.publish(sequence: sequence, step: step)
        // In place: the allocation counter of the step loop counts this thread too.
        if lastCheck == 0 { for r in heardAt.indices { heardAt[r] = now } }
        channel.receive { r, s, st in
            guard r >= 0 && r < size else { return }
            heardAt[r] = now
            if s >= heard[r].sequence { heard[r] = (s, st) }
        }
        if lastCheck != 0 && Double(now - lastCheck) / 1e9 > max(2, 4 * interval) {
            resumedAt = now
            for r in heardAt.indices { heardAt[r] = now }  // this process was away, not the others
        }
        lastCheck = now
        let entered = progress.enteredAt.load(ordering: .relaxed)
        guard entered != 0, progress.sequence.load(ordering: .relaxed) == sequence else { return .fine }
        let waited = Double(now - max(entered, resumedAt)) / 1e9
        guard waited >= timeout / 2 else { return .fine }
        func quiet(_ r: Int) -> Double { Double(now - heardAt[r]) / 1e9 }
        let silent = (0..<size).filter { $0 != rank && quiet($0) >= silence }
        // Behind: not yet in this collective. Gone: in it (or past it) but no longer sending.
        // A silent rank (stopped or dead) is the cause whenever there is one: a live rank that is
        // behind is then most likely waiting for it in an earlier collective, and is not named.
        let behind = (0..<size).filter { $0 != rank && heard[$0].sequence < sequence && (silent.isEmpty || silent.contains($0)) }
        let gone = silent.filter { heard[$0].sequence >= sequence }
        let suspects = (behind + gone).sorted()
        // One reporter, the same in every rank's view: the lowest live rank past the lowest
        // collective count among the live ranks, else the lowest live rank. Ranks can wait in
        // different collectives (one that finished its part of collective n may wait in n + 1
        // while another still waits in n), so "the lowest rank that reached MY collective" would
        // name two reporters. Silent ranks do not count: their last heartbeats are stale and can
        // differ between views (a rank stopped while sending its heartbeats told some ranks of a
        // newer collective than others), while the live ranks' counts are the same everywhere.
        let counts = (0..<size).map { $0 == rank ? sequence : heard[$0].sequence }
        let alive = (0..<size).filter { !silent.contains($0) }
        let lowest = alive.map { counts[$0] }.min() ?? sequence
        let reporter = (alive.first { counts[$0] > lowest } ?? alive.first) == rank
        let at = step > 0 ? "the collective of step \(step)" : "a collective of the job's setup"
        let lastSeen = suspects.map { r in
            "rank \(r) last reported step \(heard[r].step)" + (silent.contains(r) ? ", no heartbeat for \(Int(quiet(r))) s" : "")
        }.joined(separator: ", ")
        func what(warning: Bool) -> String {
            func part(_ ranks: [Int], _ present: String, _ past: String) -> String? {
                guard !ranks.isEmpty else { return nil }
                let verb = warning ? (ranks.count == 1 ? "has not " : "have not ") + present : "did not " + past
                return "\(StallWatchdog.names(ranks)) \(verb) \(at)"
            }
            return [part(behind, "reached", "reach"), part(gone, "completed", "complete")].compactMap { $0 }.joined(separator: " and ")
        }
        if waited >= timeout {
            guard reporter || waited >= timeout + grace else { return .fine }
            if suspects.isEmpty {
                return .fail("disttrain: error: stalled: every rank reached \(at) but it has not completed in \(Int(timeout)) s (runtime.stall_timeout_s); aborting the job")
            }
            return .fail("disttrain: error: stalled: \(what(warning: false)) within \(Int(timeout)) s (runtime.stall_timeout_s; \(lastSeen)); aborting the job")
        }
        guard reporter, warnedAt != sequence, !suspects.isEmpty else { return .fine }
        warnedAt = sequence
        return .warn("disttrain: warning: \(what(warning: true)) after \(Int(waited)) s (\(lastSeen)); the job stops at \(Int(timeout)) s (runtime.stall_timeout_s)")
    }

    static func names(_ ranks: [Int]) -> String {
        ranks.count == 1 ? "rank \(ranks[0])" : "ranks " + ranks.map(String.init).joined(separator: ", ")
    }
}
