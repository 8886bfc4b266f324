import MPIShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The MPI world. MPI may be initialized once per process, so there is one shared instance;
/// MPI_Finalize runs at process exit.
public final class MPICommunicator: Communicator {
    /// Initializes MPI on first use, with MPI_THREAD_MULTIPLE so that the stall watchdog's
    /// thread can exchange heartbeats while the training thread waits in a collective.
    /// `DISTTRAIN_MPI_THREAD_LEVEL=serialized` (a benchmarking switch) asks for
    /// MPI_THREAD_SERIALIZED instead, which leaves the watchdog off.
    public static let world = MPICommunicator()

    public let rank: Int
    public let size: Int
    public let localSize: Int
    private var requests: [MPI_Request?]
    private var pending = 0
    private let comm: MPI_Comm
    /// The watchdog's own communicator: its heartbeats never match the trainer's messages.
    private var watchdogComm: MPI_Comm? = shim_comm_null()
    private let multiThreaded: Bool
    let watch = CollectiveProgress()
    private var watchdog: StallWatchdog?

    private init() {
        var provided: Int32 = 0
        let serialized = getenv("DISTTRAIN_MPI_THREAD_LEVEL").map { String(cString: $0) } == "serialized"
        MPI_Init_thread(nil, nil, serialized ? shim_thread_serialized() : shim_thread_multiple(), &provided)
        multiThreaded = provided >= shim_thread_multiple()
        comm = shim_comm_world()
        MPI_Comm_dup(comm, &watchdogComm)
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        var local: MPI_Comm? = shim_comm_null()
        MPI_Comm_split_type(comm, shim_comm_type_shared(), r, shim_info_null(), &local)
        var ls: Int32 = 1
        MPI_Comm_size(local, &ls)
        MPI_Comm_free(&local)
        localSize = Int(ls)
        requests = Array(repeating: shim_request_null(), count: 64)
        startedCounts = .allocate(capacity: 64 * size)
        startedCounts.initialize(repeating: 0, count: 64 * size)
        gatherRequests = .allocate(capacity: MPICommunicator.gatherSlots)
        gatherRequests.initialize(repeating: shim_request_null(), count: MPICommunicator.gatherSlots)
        gatherLayout = .allocate(capacity: 2 * MPICommunicator.gatherSlots * size)
        gatherLayout.initialize(repeating: 0, count: 2 * MPICommunicator.gatherSlots * size)
        atexit {
            var finalized: Int32 = 0
            MPI_Finalized(&finalized)
            if finalized == 0 {
                MPICommunicator.world.watchdog?.stop()
                MPI_Finalize()
            }
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        allreduceInPlace(buffer, count: count, shim_float(), shim_op_sum())
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        allreduceInPlace(buffer, count: count, shim_double(), shim_op_sum())
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Int64>, count: Int) {
        allreduceInPlace(buffer, count: count, shim_int64(), shim_op_sum())
    }

    public func allreduceMax(_ buffer: UnsafeMutablePointer<Int64>, count: Int) {
        allreduceInPlace(buffer, count: count, shim_int64(), shim_op_max())
    }

    /// The blocking reductions above: in place, `count` elements of `type`, under the stall
    /// watch; nothing to do on one rank or for no data.
    private func allreduceInPlace(_ buffer: UnsafeMutableRawPointer, count: Int, _ type: MPI_Datatype?, _ op: MPI_Op?) {
        if size == 1 || count == 0 { return }
        watch.enter(); defer { watch.leave() }
        MPI_Allreduce(shim_in_place(), buffer, Int32(count), type, op, comm)
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        startAllreduceInPlace(buffer, count: count, shim_float(), shim_op_sum())
    }

    public func startAllreduceSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) {
        startAllreduceInPlace(buffer, count: count, shim_uint16(), MPICommunicator.bf16Sum)
    }

    /// The non-blocking reductions above: starts an in-place MPI_Iallreduce into the next
    /// request slot (completed by `progress` / `waitAll`); nothing on one rank or for no data.
    private func startAllreduceInPlace(_ buffer: UnsafeMutableRawPointer, count: Int, _ type: MPI_Datatype?, _ op: MPI_Op?) {
        if size == 1 || count == 0 { return }
        precondition(pending < requests.count, "too many outstanding reductions")
        let slot = pending
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Iallreduce(shim_in_place(), buffer, Int32(count), type, op, comm, r.baseAddress! + slot)
        }
        pending += 1
    }

    /// Receive counts of the started reduce-scatters, one row of `size` per request slot: MPI
    /// reads a non-blocking collective's count array until the request completes, so each
    /// started call keeps its own row (allocated once: the step loop allocates nothing).
    private let startedCounts: UnsafeMutablePointer<Int32>

    public func startReduceScatterSum(_ send: UnsafeMutablePointer<Float>, into receive: UnsafeMutablePointer<Float>, counts: [Int]) {
        startReduceScatter(send, receive, counts: counts, type: shim_float(), op: shim_op_sum())
    }

    public func startReduceScatterSumBF16(_ send: UnsafeMutablePointer<UInt16>, into receive: UnsafeMutablePointer<UInt16>, counts: [Int]) {
        startReduceScatter(send, receive, counts: counts, type: shim_uint16(), op: MPICommunicator.bf16Sum!)
    }

    private func startReduceScatter<T>(_ send: UnsafeMutablePointer<T>, _ receive: UnsafeMutablePointer<T>, counts: [Int],
                                       type: MPI_Datatype, op: MPI_Op) {
        precondition(counts.count == size, "reduceScatter needs one count per rank")
        precondition(counts.reduce(0, +) <= Int(Int32.max), "a non-blocking reduce-scatter takes at most 2^31 - 1 elements")
        if size == 1 {
            if counts[0] > 0 { receive.update(from: send, count: counts[0]) }
            return
        }
        precondition(pending < requests.count, "too many outstanding reductions")
        let slot = pending
        let row = startedCounts + slot * size
        for r in 0..<size { row[r] = Int32(counts[r]) }
        requests.withUnsafeMutableBufferPointer { q in
            _ = MPI_Ireduce_scatter(send, receive, row, type, op, comm, q.baseAddress! + slot)
        }
        pending += 1
    }

    /// MPI_SUM for bfloat16 stored as UInt16: widen to float32, add, round to nearest even.
    static let bf16Sum: MPI_Op? = {
        var op: MPI_Op? = nil
        MPI_Op_create({ input, inout_, length, _ in
            guard let input, let inout_, let length else { return }
            let a = input.assumingMemoryBound(to: UInt16.self)
            let b = inout_.assumingMemoryBound(to: UInt16.self)
            for i in 0..<Int(length.pointee) {
                b[i] = BFloat16.round(BFloat16.widen(a[i]) + BFloat16.widen(b[i]))
            }
        }, 1, &op)
        return op
    }()

    public func progress() {
        var done: Int32 = 0
        if gathersPending > 0 {
            _ = MPI_Testall(Int32(gathersPending), gatherRequests, &done, shim_statuses_ignore())
        }
        if pending == 0 { return }
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Testall(Int32(pending), r.baseAddress!, &done, shim_statuses_ignore())
        }
    }

    // MARK: Non-blocking parameter gathers (ZeRO-1 with overlap)

    /// Request slots for the outstanding gathers (their own table: they stay outstanding
    /// across the step boundary, while the reductions' table is reset at every `waitAll`).
    static let gatherSlots = 64
    private let gatherRequests: UnsafeMutablePointer<MPI_Request?>
    private var gathersPending = 0
    /// [gatherSlots][2][size] each started gather's receive counts, then displacements: MPI
    /// reads them until the request completes (allocated once: the step loop allocates nothing).
    private let gatherLayout: UnsafeMutablePointer<Int32>

    public func startAllgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        precondition(counts.count == size, "allgather needs one count per rank")
        if size == 1 { return }
        precondition(counts.reduce(0, +) <= Int(Int32.max), "a non-blocking allgather takes at most 2^31 - 1 elements")
        precondition(gathersPending < MPICommunicator.gatherSlots, "too many outstanding gathers")
        let slot = gathersPending
        let receiveCounts = gatherLayout + 2 * slot * size, displacements = receiveCounts + size
        var offset = 0
        for r in 0..<size {
            receiveCounts[r] = Int32(counts[r])
            displacements[r] = Int32(offset)
            offset += counts[r]
        }
        _ = MPI_Iallgatherv(shim_in_place(), 0, shim_float(), buffer, receiveCounts, displacements, shim_float(), comm,
                            gatherRequests + slot)
        gathersPending += 1
    }

    public func testGather(_ index: Int) -> Bool {
        guard index < gathersPending else { return true }
        var done: Int32 = 0
        _ = MPI_Test(gatherRequests + index, &done, shim_status_ignore())
        return done != 0
    }

    public func waitGather(_ index: Int) {
        guard index < gathersPending else { return }
        watch.enter(); defer { watch.leave() }
        _ = MPI_Wait(gatherRequests + index, shim_status_ignore())
    }

    public func waitAllGathers() {
        if gathersPending == 0 { return }
        watch.enter(); defer { watch.leave() }
        _ = MPI_Waitall(Int32(gathersPending), gatherRequests, shim_statuses_ignore())
        gathersPending = 0
    }

    public func waitAll() {
        if pending == 0 { return }
        watch.enter(); defer { watch.leave() }
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Waitall(Int32(pending), r.baseAddress!, shim_statuses_ignore())
        }
        pending = 0
    }

    public func allreduceMax(_ value: Int64) -> Int64 { reduce(value, shim_op_max()) }
    public func allreduceMin(_ value: Int64) -> Int64 { reduce(value, shim_op_min()) }

    private func reduce(_ value: Int64, _ op: MPI_Op) -> Int64 {
        var v = value
        allreduceInPlace(&v, count: 1, shim_int64(), op)
        return v
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        if size == 1 || count == 0 { return }
        // MPI counts are Int32: send large buffers in chunks.
        var done = 0
        while done < count {
            let n = min(count - done, 1 << 30)
            watch.enter(); defer { watch.leave() }
            MPI_Bcast(buffer + done, Int32(n), shim_float(), Int32(root), comm)
            done += n
        }
    }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        if size == 1 { return [bytes] }
        let n = Int(allreduceMax(Int64(bytes.count)))
        var send = bytes + [UInt8](repeating: 0, count: n - bytes.count)
        var lengths = [Int64](repeating: 0, count: size)
        var mine = Int64(bytes.count)
        watch.enter(); defer { watch.leave() }
        MPI_Allgather(&mine, 1, shim_int64(), &lengths, 1, shim_int64(), comm)
        var recv = [UInt8](repeating: 0, count: n * size)
        if n > 0 {
            MPI_Allgather(&send, Int32(n), shim_byte(), &recv, Int32(n), shim_byte(), comm)
        }
        return (0..<size).map { Array(recv[($0 * n)..<($0 * n + Int(lengths[$0]))]) }
    }

    // MARK: Sliced collectives (ZeRO-1) and per-request completion (traces)

    /// Largest count passed to one MPI call (MPI counts are Int32); tests lower it to
    /// exercise the chunked paths.
    nonisolated(unsafe) public static var chunkLimit = 1 << 30
    private var counts32: [Int32] = []
    private var displs32: [Int32] = []
    private var countsKey: [Int] = []
    private var scratch: UnsafeMutableRawPointer?
    private var scratchBytes = 0

    /// Int32 counts and displacements for MPI, recomputed only when `counts` change (so the
    /// step loop allocates nothing).
    private func prepare(_ counts: [Int]) {
        if counts == countsKey { return }
        countsKey = counts
        counts32 = counts.map { Int32(truncatingIfNeeded: $0) }
        var d: [Int32] = [], o = 0
        for c in counts { d.append(Int32(truncatingIfNeeded: o)); o += c }
        displs32 = d
    }

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        reduceScatter(buffer, counts: counts, type: shim_float(), op: shim_op_sum())
    }

    public func reduceScatterSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, counts: [Int]) {
        reduceScatter(buffer, counts: counts, type: shim_uint16(), op: MPICommunicator.bf16Sum!)
    }

    private func reduceScatter<T>(_ buffer: UnsafeMutablePointer<T>, counts: [Int], type: MPI_Datatype, op: MPI_Op) {
        precondition(counts.count == size, "reduceScatter needs one count per rank")
        if size == 1 { return }
        let total = counts.reduce(0, +)
        if total <= MPICommunicator.chunkLimit {
            prepare(counts)
            // Into a receive buffer kept across calls, then home to this rank's slice. (OpenMPI's
            // in-place reduce-scatter gave wrong sums for uneven counts on large buffers.)
            let bytes = max(counts[rank], 1) * MemoryLayout<T>.stride
            if bytes > scratchBytes {
                scratch?.deallocate()
                scratch = .allocate(byteCount: bytes, alignment: 64)
                scratchBytes = bytes
            }
            let recv = scratch!.assumingMemoryBound(to: T.self)
            counts32.withUnsafeBufferPointer { c in
                _ = MPI_Reduce_scatter(buffer, recv, c.baseAddress!, type, op, comm)
            }
            let offset = counts[..<rank].reduce(0, +)
            if counts[rank] > 0 { (buffer + offset).update(from: recv, count: counts[rank]) }
            return
        }
        // Counts beyond Int32: one reduction per slice, to its owner, in chunks.
        forEachSliceChunk(counts) { r, start, n in
            let p = buffer + start
            if r == rank {
                MPI_Reduce(shim_in_place(), p, Int32(n), type, op, Int32(r), comm)
            } else {
                MPI_Reduce(p, nil, Int32(n), type, op, Int32(r), comm)
            }
        }
    }

    /// The chunked paths of the sliced collectives: walks the ranks' consecutive slices
    /// (`counts[r]` elements owned by rank r) in pieces of at most `chunkLimit` elements,
    /// calling `body(owner rank, offset of the piece, its count)` in order.
    private func forEachSliceChunk(_ counts: [Int], _ body: (_ owner: Int, _ start: Int, _ n: Int) -> Void) {
        var offset = 0
        for r in 0..<size {
            var done = 0
            while done < counts[r] {
                let n = min(counts[r] - done, MPICommunicator.chunkLimit)
                body(r, offset + done, n)
                done += n
            }
            offset += counts[r]
        }
    }

    public func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        precondition(counts.count == size, "allgather needs one count per rank")
        if size == 1 { return }
        let total = counts.reduce(0, +)
        if total <= MPICommunicator.chunkLimit {
            prepare(counts)
            counts32.withUnsafeBufferPointer { c in
                displs32.withUnsafeBufferPointer { d in
                    _ = MPI_Allgatherv(shim_in_place(), 0, shim_float(), buffer, c.baseAddress!, d.baseAddress!, shim_float(), comm)
                }
            }
            return
        }
        forEachSliceChunk(counts) { r, start, n in
            MPI_Bcast(buffer + start, Int32(n), shim_float(), Int32(r), comm)
        }
    }

    public func testStarted(_ index: Int) -> Bool {
        guard index < pending else { return true }
        var done: Int32 = 0
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Test(r.baseAddress! + index, &done, shim_status_ignore())
        }
        return done != 0
    }

    public func waitStarted(_ index: Int) {
        guard index < pending else { return }
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Wait(r.baseAddress! + index, shim_status_ignore())
        }
    }

    public func barrier() {
        if size > 1 { watch.enter(); MPI_Barrier(comm); watch.leave() }
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    // MARK: Stall watchdog

    public func startStallWatchdog(timeoutSeconds: Double) {
        guard timeoutSeconds > 0, size > 1, watchdog == nil else { return }
        guard multiThreaded else {
            if rank == 0 { fputs("disttrain: warning: MPI gives no MPI_THREAD_MULTIPLE here: the stall watchdog is off\n", stderr) }
            return
        }
        let channel = MPIHeartbeats(comm: watchdogComm, rank: rank, size: size)
        let w = StallWatchdog(rank: rank, size: size, timeout: timeoutSeconds, progress: watch, channel: channel) { [comm] code in
            MPI_Abort(comm, code)
            _exit(code)
        }
        watchdog = w
        w.start()
    }

    public func watchdogStep(_ step: Int) { watch.step.store(Int64(step), ordering: .relaxed) }
}

/// Heartbeats over MPI point-to-point on the watchdog's duplicated communicator: one
/// outstanding receive and at most one send in flight per peer, two int64 each (collective
/// count, step). Used from the watchdog thread only (MPI_THREAD_MULTIPLE).
final class MPIHeartbeats: HeartbeatChannel {
    let comm: MPI_Comm?
    let rank: Int
    let size: Int
    static let tag: Int32 = 7
    private let sendBuffer: UnsafeMutablePointer<Int64>
    private let receiveBuffer: UnsafeMutablePointer<Int64>
    private let sends: UnsafeMutablePointer<MPI_Request?>
    private let receives: UnsafeMutablePointer<MPI_Request?>

    init(comm: MPI_Comm?, rank: Int, size: Int) {
        self.comm = comm
        self.rank = rank
        self.size = size
        sendBuffer = .allocate(capacity: 2 * size)
        receiveBuffer = .allocate(capacity: 2 * size)
        sendBuffer.initialize(repeating: 0, count: 2 * size)
        receiveBuffer.initialize(repeating: 0, count: 2 * size)
        sends = .allocate(capacity: size)
        receives = .allocate(capacity: size)
        sends.initialize(repeating: shim_request_null(), count: size)
        receives.initialize(repeating: shim_request_null(), count: size)
        for p in 0..<size where p != rank { post(p) }
    }

    private func post(_ peer: Int) {
        MPI_Irecv(receiveBuffer + 2 * peer, 2, shim_int64(), Int32(peer), MPIHeartbeats.tag, comm, receives + peer)
    }

    func publish(sequence: Int64, step: Int64) -> Bool {
        var all = true
        for p in 0..<size where p != rank {
            var done: Int32 = 0
            MPI_Test(sends + p, &done, shim_status_ignore())
            guard done != 0 else { all = false; continue }
            sendBuffer[2 * p] = sequence
            sendBuffer[2 * p + 1] = step
            MPI_Isend(sendBuffer + 2 * p, 2, shim_int64(), Int32(p), MPIHeartbeats.tag, comm, sends + p)
        }
        return all
    }

    func close() {
        for p in 0..<size where p != rank {
            MPI_Cancel(receives + p)
            MPI_Wait(receives + p, shim_status_ignore())
            var done: Int32 = 0
            MPI_Test(sends + p, &done, shim_status_ignore())
            if done == 0 { MPI_Request_free(sends + p) }
        }
    }

    func receive(_ body: (Int, Int64, Int64) -> Void) {
        for p in 0..<size where p != rank {
            while true {
                var done: Int32 = 0
                MPI_Test(receives + p, &done, shim_status_ignore())
                guard done != 0 else { break }
                body(p, receiveBuffer[2 * p], receiveBuffer[2 * p + 1])
                post(p)
            }
        }
    }
}
