/// The collective operations the trainer needs from a process group.
///
/// `MPICommunicator` implements it over MPI (a process started without mpirun is a world of
/// one); `LocalCommunicator` runs N ranks as threads of one process for tests. Commands get
/// theirs from `CommunicatorFactory`. Every call is collective: all ranks must make the same
/// calls in the same order.
public protocol Communicator: AnyObject {
    /// This process's rank, 0..<size.
    var rank: Int { get }
    /// Number of ranks in the job.
    var size: Int { get }
    /// Number of ranks on this host (for sizing per-rank BLAS thread pools).
    var localSize: Int { get }

    /// In-place elementwise sum across ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Starts an in-place sum that completes in `waitAll`.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Starts an in-place sum of bfloat16 values (each addition done in float32, the result
    /// rounded back to bfloat16) that completes in `waitAll`.
    ///
    /// bfloat16 is here rather than only in the reducer's wire codec because a sum on the
    /// wire is computed inside the collective, at every hop: only the communicator can add
    /// two bfloat16 buffers without widening them to float32 on the wire (which would double
    /// the bytes and defeat the point). Rounding to and from bfloat16 stays in the reducer.
    func startAllreduceSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, count: Int)
    /// Lets started reductions and gathers make progress (MPI progresses non-blocking
    /// collectives only inside MPI calls); returns at once.
    func progress()
    /// Waits for every started reduction.
    func waitAll()
    /// Sums `buffer` (the sum of `counts` elements) across ranks, leaving on rank r the sums
    /// of its slice, elements [counts[0..<r].sum, + counts[r]); the rest of the buffer is
    /// undefined afterwards. Counts may be uneven (and zero).
    func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// The same for bfloat16 values (each addition in float32, rounded back to bfloat16).
    func reduceScatterSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, counts: [Int])
    /// Starts a reduce-scatter that completes in `waitAll` (or `waitStarted`): the
    /// `counts.reduce(0, +)` floats at `send` are summed across ranks and rank r receives, at
    /// `receive`, the sums of elements [counts[0..<r].sum, + counts[r]) of `send` (counts may be
    /// zero). Neither buffer may be touched until it completes. ZeRO-1 with overlap: one per
    /// gradient bucket, started during backward, each rank receiving the bucket's part of its
    /// slice; `receive` is separate from `send` because the bucket's other slices are still
    /// being read by the collective while this rank's part arrives.
    func startReduceScatterSum(_ send: UnsafeMutablePointer<Float>, into receive: UnsafeMutablePointer<Float>, counts: [Int])
    /// The same for bfloat16 values (each addition in float32, rounded back to bfloat16).
    func startReduceScatterSumBF16(_ send: UnsafeMutablePointer<UInt16>, into receive: UnsafeMutablePointer<UInt16>, counts: [Int])
    /// Rank r contributes its slice of `buffer` (as in `reduceScatterSum`); afterwards every
    /// rank holds every slice.
    func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// Starts an in-place allgather of a range of a buffer (ZeRO-1: one per parameter range,
    /// started after the sliced Adam, so the next step's forward can wait for each range just
    /// before a layer reads it). `buffer` points at the range's first element; rank r owns
    /// `counts[r]` elements starting at `counts[0..<r].sum` (counts may be zero) and every rank
    /// receives the others' elements there. It completes in `waitGather` / `waitAllGathers`;
    /// `progress()` also moves it. Gathers have their own numbering, apart from the reductions:
    /// the `index`-th gather started since the last `waitAllGathers`. Until it completes, no
    /// rank may write its own elements, nor read the others'.
    func startAllgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// Whether the `index`-th started gather has completed (lets it progress; traces).
    func testGather(_ index: Int) -> Bool
    /// Waits for the `index`-th started gather.
    func waitGather(_ index: Int)
    /// Waits for every started gather and restarts their numbering.
    func waitAllGathers()
    /// Whether the `index`-th reduction started since the last `waitAll` has completed (lets
    /// it progress). For traces: per-bucket completion times.
    func testStarted(_ index: Int) -> Bool
    /// Waits for the `index`-th reduction started since the last `waitAll`.
    func waitStarted(_ index: Int)
    /// In-place elementwise sum of 64-bit integers across ranks. Integer addition is exact and
    /// associative (while no sum overflows), so every rank gets the same bits whatever order
    /// the ranks' values are added in: deterministic mode's fixed-point gradients use it.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Int64>, count: Int)
    /// In-place elementwise maximum of 64-bit integers across ranks (order-free).
    func allreduceMax(_ buffer: UnsafeMutablePointer<Int64>, count: Int)
    /// The maximum and minimum of a value across ranks.
    func allreduceMax(_ value: Int64) -> Int64
    func allreduceMin(_ value: Int64) -> Int64
    /// Copies `count` floats from `root` to every rank.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int)
    /// Gathers one fixed-size byte record from every rank to every rank.
    func allgather(_ bytes: [UInt8]) -> [[UInt8]]
    func barrier()
    /// Kills the whole job from one rank, for when the other ranks can no longer be reached
    /// with a collective (a stalled rank); failures they can agree on go through `collectively`.
    func abort(code: Int32) -> Never

    /// Starts this rank's stall watchdog (see `StallWatchdog`): a thread that warns when this
    /// rank has waited in a collective for half of `timeoutSeconds`, naming the ranks that have
    /// not arrived, and aborts the job at the full time. 0 leaves it off.
    func startStallWatchdog(timeoutSeconds: Double)
    /// Tells the watchdog which training step the following collectives belong to (0: setup).
    func watchdogStep(_ step: Int)
}

extension Communicator {
    // Defaults, correct for any communicator (a whole-buffer sum leaves every slice summed);
    // MPICommunicator and LocalCommunicator move only the slices.
    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        allreduceSum(buffer, count: counts.reduce(0, +))
    }
    public func reduceScatterSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, counts: [Int]) {
        startAllreduceSumBF16(buffer, count: counts.reduce(0, +))
        waitAll()
    }
    public func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        var offset = 0
        for (r, n) in counts.enumerated() {
            broadcast(buffer + offset, count: n, root: r)
            offset += n
        }
    }
    /// A blocking allgather at the start (correct, with nothing to overlap).
    public func startAllgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) { allgather(buffer, counts: counts) }
    public func testGather(_ index: Int) -> Bool { true }
    public func waitGather(_ index: Int) {}
    public func waitAllGathers() {}
    /// Unknown: completion is observed at `waitAll`.
    public func testStarted(_ index: Int) -> Bool { false }
    public func waitStarted(_ index: Int) {}
    /// No watchdog by default (`LocalCommunicator`: threads of one process cannot stall apart).
    public func startStallWatchdog(timeoutSeconds: Double) {}
    public func watchdogStep(_ step: Int) {}

    /// True on the writer: rank 0, the only rank that writes files (the run directory,
    /// checkpoints, images) and prints results. Collective calls keep MPI's own "root" for
    /// the rank a broadcast starts from.
    public var isWriter: Bool { rank == 0 }

    /// Sums float64 values across ranks and returns them.
    public func sum(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { allreduceSum($0.baseAddress!, count: $0.count) }
        return v
    }

    /// The lowest rank for which `failed` is true, or nil when every rank succeeded.
    /// Lets a rank that hit an error stop every other rank at the same point, without a hang.
    public func firstFailingRank(_ failed: Bool) -> Int? {
        let r = allreduceMin(failed ? Int64(rank) : Int64.max)
        return r == Int64.max ? nil : Int(r)
    }
}
