/// ZeRO-1's parameter allgather overlapped with the next step's forward.
///
/// After the sliced Adam each rank holds fresh values only in its own slice. Instead of one
/// blocking allgather of the whole buffer, `start()` starts one non-blocking allgather per
/// range, in forward order (lowest offsets, the first layers, first), and the next forward
/// waits for a range only when a layer is about to read it (`need`, called through the
/// model's forward hook). Between layers it pokes MPI (OpenMPI has no progress thread here),
/// so later ranges move while earlier layers compute; batch filling overlaps too.
///
/// The ranges are the gradient reducer's buckets in reverse: cut at layer boundaries and at
/// least `bucket_mb` long, so a layer's parameter block lies in one range, there are few
/// requests (each a collective with its own latency; a per-layer cut would start tiny ones
/// for biases and small layers), and the cut is the one already tuned for the reduce-scatter.
///
/// Anything else that reads the parameters (evaluation, grids, checkpoints, checksums, the
/// end of training) must call `completeAll()` first: the trainer's `completeParameterGathers()`.
/// This code allocates nothing per step (MPI's own allocations are booked with the reducer's).
public final class ParameterGather {
    let comm: Communicator
    /// [parameterCount] the flat parameter buffer the gathers fill.
    let params: UnsafeMutablePointer<Float>
    /// Parameter ranges in forward order (ascending offsets), covering the buffer.
    public let ranges: [Range<Int>]
    /// [ranges][ranks] every rank's share of each range: its slice's intersection with it.
    let shares: [[Int]]
    /// Where communicator calls are booked (MPI's allocations apart from the step loop's own).
    let book: GradientReducer
    /// Step trace: each range's allgather from start to observed completion, and the waits.
    var trace: TraceRecorder?
    /// [ranges] when each range's gather started, and whether its completion was recorded.
    let startedAt: UnsafeMutablePointer<Double>
    let observed: UnsafeMutablePointer<Bool>
    /// Ranges started (all or none), and the first one not yet waited for.
    private(set) var started = 0
    private(set) var nextWait = 0
    /// Seconds spent waiting (`need`, `completeAll`) since the last `takeWaitSeconds()`.
    private var waited = 0.0
    /// Gathers started and waits that blocked, over the whole run (tests read them).
    public private(set) var gathersStarted = 0
    public private(set) var waitsInForward = 0

    /// `shardCounts`: every rank's slice length; `ranges`: the cut, in forward order.
    public init(comm: Communicator, params: UnsafeMutablePointer<Float>, shardCounts: [Int], ranges: [Range<Int>],
                book: GradientReducer) {
        precondition(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound },
                     "gather ranges must be consecutive, in forward order")
        self.comm = comm
        self.params = params
        self.ranges = ranges
        self.book = book
        shares = ranges.map { ShardPlan.shares(of: $0, counts: shardCounts) }
        startedAt = .allocate(capacity: max(ranges.count, 1))
        startedAt.initialize(repeating: 0, count: max(ranges.count, 1))
        observed = .allocate(capacity: max(ranges.count, 1))
        observed.initialize(repeating: true, count: max(ranges.count, 1))
    }

    deinit {
        startedAt.deallocate()
        observed.deallocate()
    }

    /// Whether some range is still being gathered.
    public var outstanding: Bool { nextWait < started }

    var tracing: Bool { trace?.active ?? false }

    /// After this rank's slice was updated: starts every range's gather, first layers first.
    @inline(__always)
    public func start() {
        precondition(!outstanding, "parameter gathers started twice")
        let now = Clock.now()
        for i in ranges.indices {
            startedAt[i] = now
            observed[i] = false
            book.inCommunicator { comm.startAllgather(params + ranges[i].lowerBound, counts: shares[i]) }
        }
        started = ranges.count
        nextWait = 0
        gathersStarted += ranges.count
    }

    /// A layer is about to read the parameter block starting at `offset`: waits for every
    /// range that begins at or below it (the block lies within the last of them), then lets
    /// the rest progress.
    @inline(__always)
    public func need(_ offset: Int) {
        guard nextWait < started else { return }
        if ranges[nextWait].lowerBound <= offset {
            let began = Clock.now()
            while nextWait < started && ranges[nextWait].lowerBound <= offset { wait() }
            let end = Clock.now()
            waited += end - began
            waitsInForward += 1
            if tracing { trace?.record(.allgatherWait, start: began, end: end) }
        }
        if nextWait == started {
            finish()
        } else {
            book.inCommunicator { comm.progress() }
            if tracing { observeCompletions() }
        }
    }

    /// Lets outstanding gathers progress (MPI moves a non-blocking collective only inside MPI
    /// calls): batch filling calls it between rows, so the first ranges move before forward.
    @inline(__always)
    public func poke() {
        guard nextWait < started else { return }
        book.inCommunicator { comm.progress() }
    }

    /// Waits for whatever is still outstanding (a no-op when nothing is).
    @inline(__always)
    public func completeAll() {
        guard nextWait < started else { return }
        let began = Clock.now()
        while nextWait < started { wait() }
        finish()
        waited += Clock.now() - began
    }

    /// Time spent waiting since the last call: in a step, moved from forward to the allgather
    /// phase of the step's times (the phases still add up to the step); the trainer drops what
    /// epoch-end waits added before each step.
    @inline(__always)
    func takeWaitSeconds() -> Double {
        defer { waited = 0 }
        return waited
    }

    @inline(__always)
    private func wait() {
        let i = nextWait
        book.inCommunicator { comm.waitGather(i) }
        record(i)
        nextWait += 1
    }

    /// All ranges have arrived: releases the communicator's gather slots.
    @inline(__always)
    private func finish() {
        book.inCommunicator { comm.waitAllGathers() }
        started = 0
        nextWait = 0
    }

    /// Trace: the ranges found complete since the last look.
    private func observeCompletions() {
        for i in nextWait..<started where !observed[i] {
            var done = false
            book.inCommunicator { done = comm.testGather(i) }
            if done { record(i) }
        }
    }

    @inline(__always)
    private func record(_ i: Int) {
        if observed[i] { return }
        observed[i] = true
        if tracing { trace?.record(.parameterGather, start: startedAt[i], end: Clock.now(), bucket: i) }
    }
}
