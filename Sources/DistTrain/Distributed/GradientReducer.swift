import Models

/// Sums the flat gradient buffer across ranks, in one piece or in buckets overlapped with
/// backward. All storage is allocated up front: this code allocates nothing per step (MPI itself may;
/// see `communicatorAllocations`).
///
/// The buffer is [gradients (parameterCount) | extra (loss sums)]. Backward finishes layers in
/// reverse memory order, so buckets are cut from the end of the buffer backwards at layer
/// boundaries, each at least `bucketFloats` long (the last one takes what is left).
public final class GradientReducer {
    public let comm: Communicator
    public let mode: AllreduceMode
    public let precision: WirePrecision
    public let parameterCount: Int
    public let extraCount: Int
    /// Bucket ranges in the order they are started (highest offsets first).
    public let buckets: [Range<Int>]
    /// ZeRO-1: every rank's slice of the parameters. Then the gradients are reduce-scattered
    /// and only this rank's slice, `shard`, holds the sums after `complete()`: in `.single` mode
    /// one blocking call after backward; in `.overlap` mode one non-blocking reduce-scatter per
    /// bucket, started during backward, each rank receiving the bucket's intersection with its
    /// slice (zero elements for most ranks' slices). The slices do not depend on the buckets,
    /// so the sharded Adam and the checkpoints are the same in both modes.
    public let shardCounts: [Int]?
    public let shard: Range<Int>
    /// ZeRO-1 with overlap, per bucket (in `buckets` order): every rank's share of the bucket
    /// (its slice's intersection with the bucket's range), and where this rank's share lands
    /// in `received` (offset from `shard.lowerBound`). Empty unless sharded with overlap.
    let bucketShares: [[Int]]       // [buckets][ranks]
    let bucketReceiveOffsets: [Int] // [buckets]
    /// [shard.count] ZeRO-1 with overlap: this rank's summed slice as the buckets' reduce-scatters
    /// deliver it (fp32 wire), copied into `buffer[shard]` once all have completed.
    let received: UnsafeMutablePointer<Float>
    /// [shard.count] the same for the bf16 wire (bfloat16 sums, widened into `buffer[shard]`).
    let receivedWire: UnsafeMutablePointer<UInt16>
    /// Step trace: bucket reductions from start to observed completion (nil: off).
    public var trace: TraceRecorder?
    let bucketStart: UnsafeMutablePointer<Double>
    let bucketDone: UnsafeMutablePointer<Bool>
    let buffer: UnsafeMutablePointer<Float>
    let wire: UnsafeMutablePointer<UInt16>
    var nextBucket = 0
    /// Heap allocations made inside communicator (MPI) calls so far. MPI's collectives may
    /// allocate per call (schedules of non-blocking collectives, ring temporaries); the trainer
    /// reports them apart from the allocations of its own code, which should be none.
    public private(set) var communicatorAllocations: UInt64 = 0

    /// Runs one communicator call, counting the allocations it makes.
    @inline(__always)
    func inCommunicator(_ call: () -> Void) {
        let before = AllocationCounter.count
        call()
        communicatorAllocations &+= AllocationCounter.count &- before
    }

    public init(comm: Communicator, buffer: UnsafeMutablePointer<Float>, parameterCount: Int, extraCount: Int,
                layerStarts: [Int], mode: AllreduceMode, precision: WirePrecision, bucketFloats: Int,
                shardCounts: [Int]? = nil) {
        self.comm = comm
        self.buffer = buffer
        self.mode = mode
        self.precision = precision
        self.parameterCount = parameterCount
        self.extraCount = extraCount
        var cuts: [Range<Int>] = []
        if mode == .overlap {
            var end = parameterCount
            for start in layerStarts.sorted(by: >) where start < end && (end - start >= bucketFloats || start == 0) {
                cuts.append(start..<end)
                end = start
            }
            if end > 0 { cuts.append(0..<end) }
        } else {
            cuts = [0..<parameterCount]
        }
        buckets = cuts
        wire = .allocate(capacity: max(precision == .bf16 ? parameterCount : 0, 1))
        self.shardCounts = shardCounts
        if let counts = shardCounts {
            precondition(counts.count == comm.size && counts.reduce(0, +) == parameterCount, "shard counts must cover the parameters, one per rank")
            let offset = counts[..<comm.rank].reduce(0, +)
            shard = offset..<(offset + counts[comm.rank])
        } else {
            shard = 0..<parameterCount
        }
        var shares: [[Int]] = [], offsets: [Int] = []
        let overlapSharded = shardCounts != nil && mode == .overlap
        if let counts = shardCounts, overlapSharded {
            for bucket in cuts {
                shares.append(ShardPlan.shares(of: bucket, counts: counts))
                offsets.append(min(max(bucket.lowerBound, shard.lowerBound) - shard.lowerBound, shard.count))
            }
        }
        bucketShares = shares
        bucketReceiveOffsets = offsets
        received = .allocate(capacity: max(overlapSharded && precision == .fp32 ? shard.count : 0, 1))
        receivedWire = .allocate(capacity: max(overlapSharded && precision == .bf16 ? shard.count : 0, 1))
        bucketStart = .allocate(capacity: max(cuts.count, 1))
        bucketStart.initialize(repeating: 0, count: max(cuts.count, 1))
        bucketDone = .allocate(capacity: max(cuts.count, 1))
        bucketDone.initialize(repeating: false, count: max(cuts.count, 1))
    }

    deinit {
        wire.deallocate()
        received.deallocate()
        receivedWire.deallocate()
        bucketStart.deallocate()
        bucketDone.deallocate()
    }

    /// Whether this step's buckets are being traced.
    var tracing: Bool { trace?.active ?? false }

    /// Call before backward.
    @inline(__always)
    public func begin() { nextBucket = 0 }

    /// Backward reports that every gradient at or above `offset` is final: start the buckets
    /// that are complete, and give the ones in flight a chance to progress.
    @inline(__always)
    public func finished(upTo offset: Int) {
        guard mode == .overlap, comm.size > 1 else { return }
        while nextBucket < buckets.count && buckets[nextBucket].lowerBound >= offset {
            start(nextBucket)
            nextBucket += 1
        }
        inCommunicator { comm.progress() }
        if tracing { observeCompletions() }
    }

    /// Trace: records the buckets found complete since the last look.
    func observeCompletions() {
        for i in 0..<nextBucket where !bucketDone[i] && comm.testStarted(i) {
            bucketDone[i] = true
            trace?.record(bucketPhase, start: bucketStart[i], end: Clock.now(), bucket: i)
        }
    }

    /// Starts whatever is left, sums the extra slots, and waits for everything.
    @inline(__always)
    public func complete() {
        guard comm.size > 1 else { return }
        if let counts = shardCounts {
            if mode == .overlap { completeShardedOverlap() } else { completeSharded(counts) }
            return
        }
        if mode == .single && precision == .fp32 {
            // The plain path: one blocking allreduce of gradients and loss sums together.
            let began = tracing ? Clock.now() : 0
            inCommunicator { comm.allreduceSum(buffer, count: parameterCount + extraCount) }
            if tracing { trace?.record(.bucket, start: began, end: Clock.now(), bucket: 0) }
            return
        }
        startRemainingAndTraceWaits()
        // The loss sums always travel in float32: bfloat16 would round them to 3 digits.
        inCommunicator {
            comm.startAllreduceSum(buffer + parameterCount, count: extraCount)
            comm.waitAll()
        }
        if precision == .bf16 {
            let w = wire, b = buffer
            for i in 0..<parameterCount { b[i] = BFloat16.widen(w[i]) }
        }
    }

    /// Starts the buckets backward has not started; when tracing, waits for them one by one
    /// to time each completion (the same sums as waiting for all at once).
    @inline(__always)
    func startRemainingAndTraceWaits() {
        while nextBucket < buckets.count {
            start(nextBucket)
            nextBucket += 1
        }
        if tracing {
            // Wait bucket by bucket (same sums as waiting for all) to time each completion.
            for i in 0..<buckets.count where !bucketDone[i] {
                inCommunicator { comm.waitStarted(i) }
                bucketDone[i] = true
                trace?.record(bucketPhase, start: bucketStart[i], end: Clock.now(), bucket: i)
            }
        }
    }

    /// ZeRO-1 with overlap: the buckets' reduce-scatters (most started during backward) and the
    /// loss sums complete; then this rank's slice of the sums moves from `received` into the
    /// gradient buffer, where clipping and the sharded Adam read it.
    func completeShardedOverlap() {
        startRemainingAndTraceWaits()
        inCommunicator {
            comm.startAllreduceSum(buffer + parameterCount, count: extraCount)
            comm.waitAll()
        }
        let mine = buffer + shard.lowerBound
        switch precision {
        case .fp32:
            mine.update(from: received, count: shard.count)
        case .bf16:
            let w = receivedWire
            for i in 0..<shard.count { mine[i] = BFloat16.widen(w[i]) }
        }
    }

    /// ZeRO-1: reduce-scatter of the gradients (this rank's slice gets the sums), the loss
    /// sums allreduced beside them.
    func completeSharded(_ counts: [Int]) {
        let began = tracing ? Clock.now() : 0
        switch precision {
        case .fp32:
            inCommunicator { comm.reduceScatterSum(buffer, counts: counts) }
        case .bf16:
            let w = wire, b = buffer
            for i in 0..<parameterCount { w[i] = BFloat16.round(b[i]) }
            inCommunicator { comm.reduceScatterSumBF16(wire, counts: counts) }
            for i in shard { b[i] = BFloat16.widen(w[i]) }
        }
        inCommunicator { comm.allreduceSum(buffer + parameterCount, count: extraCount) }
        if tracing { trace?.record(.bucketReduceScatter, start: began, end: Clock.now(), bucket: 0) }
    }

    /// What a bucket's reduction is called in a trace.
    var bucketPhase: TracePhase { shardCounts == nil ? .bucket : .bucketReduceScatter }

    @inline(__always)
    func start(_ index: Int) {
        let r = buckets[index]
        if tracing {
            bucketStart[index] = Clock.now()
            bucketDone[index] = false
        }
        if shardCounts != nil {
            let shares = bucketShares[index], at = bucketReceiveOffsets[index]
            switch precision {
            case .fp32:
                inCommunicator { comm.startReduceScatterSum(buffer + r.lowerBound, into: received + at, counts: shares) }
            case .bf16:
                let w = wire, b = buffer
                for i in r { w[i] = BFloat16.round(b[i]) }
                inCommunicator { comm.startReduceScatterSumBF16(wire + r.lowerBound, into: receivedWire + at, counts: shares) }
            }
            return
        }
        switch precision {
        case .fp32:
            inCommunicator { comm.startAllreduceSum(buffer + r.lowerBound, count: r.count) }
        case .bf16:
            let w = wire, b = buffer
            for i in r { w[i] = BFloat16.round(b[i]) }
            inCommunicator { comm.startAllreduceSumBF16(wire + r.lowerBound, count: r.count) }
        }
    }
}

/// ZeRO-1 slices: `parameters` split over `ranks` as evenly as possible, the first
/// `parameters % ranks` ranks one longer.
public enum ShardPlan {
    public static func counts(parameters: Int, ranks: Int) -> [Int] {
        (0..<ranks).map { parameters / ranks + ($0 < parameters % ranks ? 1 : 0) }
    }

    /// Every rank's share of `range`: its intersection with each rank's slice (slices of
    /// `counts` elements, laid end to end from 0), zero for slices it misses. The counts of a
    /// reduce-scatter or allgather over that range.
    public static func shares(of range: Range<Int>, counts: [Int]) -> [Int] {
        var start = 0
        return counts.map { n in
            defer { start += n }
            return max(0, min(range.upperBound, start + n) - max(range.lowerBound, start))
        }
    }
}
