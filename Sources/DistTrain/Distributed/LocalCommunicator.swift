#if canImport(Glibc)
import Glibc
#endif

/// N ranks as threads of one process, with real collectives over shared memory.
///
/// `MPICommunicator` is the real thing, but every test through it needs mpirun. This is the
/// in-process twin (as swift-nio's `EmbeddedEventLoop` stands beside its real event loops):
/// the trainer, the gradient reducer and any cross-rank layer run unchanged on 1-N ranks
/// under plain `swift test`.
///
///     try LocalCommunicator.run(ranks: 4) { comm in
///         let trainer = try Trainer(config: config, comm: comm, ...)
///         try trainer.fit()
///     }
///
/// Sums add the ranks' contributions in rank order, so results are deterministic (they need
/// not match MPI's order bit for bit). Non-blocking sums complete when started: `progress()`
/// and `waitAll()` have nothing left to do. Non-blocking gathers (`startAllgather`) are the
/// opposite: they move only when waited for, so tests see any read that skipped its wait. Every collective is a rendezvous of all ranks, so
/// as with MPI all ranks must make the same calls in the same order.
public final class LocalCommunicator: Communicator {
    public let rank: Int
    public var size: Int { group.size }
    public var localSize: Int { group.size }
    let group: Group

    init(rank: Int, group: Group) {
        self.rank = rank
        self.group = group
    }

    /// Runs `body` once per rank, each on its own thread, and returns when all have returned.
    /// If any rank throws, the first rank's own error is rethrown after all have finished (a
    /// `PeerFailure`, "another rank failed", only when no rank has anything better to say).
    public static func run(ranks: Int, _ body: @escaping @Sendable (LocalCommunicator) throws -> Void) throws {
        precondition(ranks >= 1, "LocalCommunicator.run needs at least one rank")
        let group = Group(size: ranks)
        let outcomes = Outcomes(count: ranks)
        var threads: [pthread_t] = []
        for r in 0..<ranks {
            let comm = LocalCommunicator(rank: r, group: group)
            let job = Job { do { try body(comm) } catch { outcomes.set(r, error) } }
            let context = Unmanaged.passRetained(job).toOpaque()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 16 << 20)
            var thread = pthread_t()
            let status = pthread_create(&thread, &attributes, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.body()
                return nil
            }, context)
            pthread_attr_destroy(&attributes)
            precondition(status == 0, "pthread_create failed: \(status)")
            threads.append(thread)
        }
        for t in threads { pthread_join(t, nil) }
        if let first = outcomes.firstError { throw first }
    }

    // MARK: Collectives

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        reduce(buffer, count: count) { $0 + $1 }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        reduce(buffer, count: count) { $0 + $1 }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Int64>, count: Int) {
        reduce(buffer, count: count) { $0 &+ $1 }
    }

    public func allreduceMax(_ buffer: UnsafeMutablePointer<Int64>, count: Int) {
        reduce(buffer, count: count) { max($0, $1) }
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        allreduceSum(buffer, count: count)
    }

    public func startAllreduceSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) {
        // Each addition in float32, rounded back to bfloat16, as the MPI operator does.
        reduce(buffer, count: count) { BFloat16.round(BFloat16.widen($0) + BFloat16.widen($1)) }
    }

    public func progress() {}
    public func waitAll() {}

    public func allreduceMax(_ value: Int64) -> Int64 { var v = value; reduce(&v, count: 1) { max($0, $1) }; return v }
    public func allreduceMin(_ value: Int64) -> Int64 { var v = value; reduce(&v, count: 1) { min($0, $1) }; return v }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        group.publish(rank, UnsafeMutableRawPointer(buffer))
        group.barrier()
        if rank != root, count > 0 {
            buffer.update(from: group.slots[root]!.assumingMemoryBound(to: Float.self), count: count)
        }
        group.barrier()
    }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        var mine = bytes
        return mine.withUnsafeMutableBufferPointer { own -> [[UInt8]] in
            group.publish(rank, UnsafeMutableRawPointer(own.baseAddress))
            group.counts[rank] = own.count
            group.barrier()
            let all = (0..<size).map { r -> [UInt8] in
                let n = group.counts[r]
                guard n > 0 else { return [] }
                return Array(UnsafeBufferPointer(start: group.slots[r]!.assumingMemoryBound(to: UInt8.self), count: n))
            }
            group.barrier()
            return all
        }
    }

    // MARK: Sliced collectives (ZeRO-1) and per-request completion

    /// This rank's slice of a buffer cut by `counts`: (offset, count).
    private func slice(_ counts: [Int]) -> (Int, Int) {
        precondition(counts.count == size, "sliced collectives need one count per rank")
        var offset = 0
        for r in 0..<rank { offset += counts[r] }
        return (offset, counts[rank])
    }

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        let (offset, n) = slice(counts)
        reduceSlice(buffer, offset: offset, count: n) { $0 + $1 }
    }

    public func reduceScatterSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, counts: [Int]) {
        let (offset, n) = slice(counts)
        reduceSlice(buffer, offset: offset, count: n) { BFloat16.round(BFloat16.widen($0) + BFloat16.widen($1)) }
    }

    public func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        _ = slice(counts)
        if size == 1 { return }
        group.publish(rank, UnsafeMutableRawPointer(buffer))
        group.barrier()
        var offset = 0
        for r in 0..<size {
            if r != rank && counts[r] > 0 {
                (buffer + offset).update(from: group.slots[r]!.assumingMemoryBound(to: Float.self) + offset, count: counts[r])
            }
            offset += counts[r]
        }
        group.barrier()
    }

    public func startReduceScatterSum(_ send: UnsafeMutablePointer<Float>, into receive: UnsafeMutablePointer<Float>, counts: [Int]) {
        reduceSliceApart(send, into: receive, counts: counts) { $0 + $1 }
    }

    public func startReduceScatterSumBF16(_ send: UnsafeMutablePointer<UInt16>, into receive: UnsafeMutablePointer<UInt16>, counts: [Int]) {
        reduceSliceApart(send, into: receive, counts: counts) { BFloat16.round(BFloat16.widen($0) + BFloat16.widen($1)) }
    }

    /// This rank's slice of every rank's `send`, summed in rank order, into `receive` (the same
    /// additions in the same order as `reduceSlice`, so the same bits as the blocking call).
    private func reduceSliceApart<T>(_ send: UnsafeMutablePointer<T>, into receive: UnsafeMutablePointer<T>, counts: [Int],
                                     _ combine: (T, T) -> T) {
        let (offset, count) = slice(counts)
        if size == 1 {
            if count > 0 { receive.update(from: send, count: count) }
            return
        }
        group.publish(rank, UnsafeMutableRawPointer(send))
        group.barrier()
        if count > 0 {
            receive.update(from: group.slots[0]!.assumingMemoryBound(to: T.self) + offset, count: count)
            for r in 1..<size {
                let other = group.slots[r]!.assumingMemoryBound(to: T.self) + offset
                for i in 0..<count { receive[i] = combine(receive[i], other[i]) }
            }
        }
        group.barrier()  // no rank publishes its next buffer while another still reads this one
    }

    /// Non-blocking sums complete when started.
    public func testStarted(_ index: Int) -> Bool { true }
    public func waitStarted(_ index: Int) {}

    /// Gathers started and not yet completed, in order (capacity reserved up front).
    private var gathers: [(buffer: UnsafeMutablePointer<Float>, counts: [Int])] = {
        var g: [(buffer: UnsafeMutablePointer<Float>, counts: [Int])] = []
        g.reserveCapacity(64)
        return g
    }()
    private var gathersDone = 0

    /// Unlike the sums, a gather is deferred: nothing moves until `waitGather` reaches it (a
    /// rendezvous of all ranks, in start order). So a rank that read another rank's elements
    /// before waiting would see its own stale values: in-process tests catch a missing wait.
    public func startAllgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        _ = slice(counts)
        precondition(gathers.count < gathers.capacity, "too many outstanding gathers")
        gathers.append((buffer, counts))
    }

    public func testGather(_ index: Int) -> Bool { index < gathersDone || index >= gathers.count }

    public func waitGather(_ index: Int) {
        while gathersDone <= index && gathersDone < gathers.count {
            let g = gathers[gathersDone]
            allgather(g.buffer, counts: g.counts)
            gathersDone += 1
        }
    }

    public func waitAllGathers() {
        waitGather(gathers.count - 1)
        gathers.removeAll(keepingCapacity: true)
        gathersDone = 0
    }

    /// Sums elements [offset, offset + count) of every rank's buffer, in rank order, into this
    /// rank's buffer; every rank takes part in the rendezvous even with nothing to sum.
    private func reduceSlice<T>(_ buffer: UnsafeMutablePointer<T>, offset: Int, count: Int, _ combine: (T, T) -> T) {
        if size == 1 { return }
        group.publish(rank, UnsafeMutableRawPointer(buffer))
        group.barrier()
        if count > 0 {
            let scratch = group.scratch(rank, bytes: count * MemoryLayout<T>.stride).assumingMemoryBound(to: T.self)
            scratch.update(from: group.slots[0]!.assumingMemoryBound(to: T.self) + offset, count: count)
            for r in 1..<size {
                let other = group.slots[r]!.assumingMemoryBound(to: T.self) + offset
                for i in 0..<count { scratch[i] = combine(scratch[i], other[i]) }
            }
        }
        group.barrier()
        if count > 0 {
            (buffer + offset).update(from: group.scratch(rank, bytes: count * MemoryLayout<T>.stride).assumingMemoryBound(to: T.self), count: count)
        }
    }

    public func barrier() { group.barrier() }

    /// There is no job to kill from inside a test process: stop it loudly.
    public func abort(code: Int32) -> Never {
        fatalError("LocalCommunicator: rank \(rank) aborted the group (code \(code))")
    }

    /// Elementwise reduction in rank order: every rank publishes its buffer, each rank folds
    /// all of them into its private scratch, and after a second rendezvous copies the result
    /// back (no rank overwrites a buffer another rank may still be reading).
    private func reduce<T>(_ buffer: UnsafeMutablePointer<T>, count: Int, _ combine: (T, T) -> T) {
        if size == 1 || count == 0 { return }
        group.publish(rank, UnsafeMutableRawPointer(buffer))
        group.barrier()
        let scratch = group.scratch(rank, bytes: count * MemoryLayout<T>.stride).assumingMemoryBound(to: T.self)
        let first = group.slots[0]!.assumingMemoryBound(to: T.self)
        scratch.update(from: first, count: count)
        for r in 1..<size {
            let other = group.slots[r]!.assumingMemoryBound(to: T.self)
            for i in 0..<count { scratch[i] = combine(scratch[i], other[i]) }
        }
        group.barrier()
        buffer.update(from: scratch, count: count)
    }

    // MARK: Shared state

    /// What the ranks of one group share: a reusable barrier, one published pointer per rank,
    /// and per-rank scratch that grows to the largest reduction and is then reused (so the
    /// step loop allocates nothing once warm).
    final class Group: @unchecked Sendable {
        let size: Int
        var slots: [UnsafeMutableRawPointer?]
        var counts: [Int]
        private var scratches: [(UnsafeMutableRawPointer, Int)?]
        private var mutex = pthread_mutex_t()
        private var condition = pthread_cond_t()
        private var arrived = 0
        private var generation = 0

        init(size: Int) {
            self.size = size
            slots = Array(repeating: nil, count: size)
            counts = Array(repeating: 0, count: size)
            scratches = Array(repeating: nil, count: size)
            pthread_mutex_init(&mutex, nil)
            pthread_cond_init(&condition, nil)
        }

        deinit {
            for s in scratches { s?.0.deallocate() }
            pthread_mutex_destroy(&mutex)
            pthread_cond_destroy(&condition)
        }

        func publish(_ rank: Int, _ pointer: UnsafeMutableRawPointer?) { slots[rank] = pointer }

        func scratch(_ rank: Int, bytes: Int) -> UnsafeMutableRawPointer {
            if let (p, n) = scratches[rank], n >= bytes { return p }
            scratches[rank]?.0.deallocate()
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 16), alignment: 64)
            scratches[rank] = (p, max(bytes, 16))
            return p
        }

        /// Returns when every rank has called it (a generation counter makes it reusable).
        func barrier() {
            pthread_mutex_lock(&mutex)
            let mine = generation
            arrived += 1
            if arrived == size {
                arrived = 0
                generation &+= 1
                pthread_cond_broadcast(&condition)
            } else {
                while generation == mine { pthread_cond_wait(&condition, &mutex) }
            }
            pthread_mutex_unlock(&mutex)
        }
    }

    private final class Job {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private final class Outcomes: @unchecked Sendable {
        private var errors: [Error?]
        private var lock = pthread_mutex_t()
        init(count: Int) { errors = Array(repeating: nil, count: count); pthread_mutex_init(&lock, nil) }
        func set(_ rank: Int, _ error: Error) { pthread_mutex_lock(&lock); errors[rank] = error; pthread_mutex_unlock(&lock) }
        var firstError: Error? {
            let all = errors.compactMap { $0 }
            return all.first { !($0 is PeerFailure) } ?? all.first
        }
    }
}
