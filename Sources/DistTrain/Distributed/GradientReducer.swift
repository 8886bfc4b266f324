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
                layerStarts: [Int], mode: AllreduceMode, precision: WirePrecision, bucketFloats: Int) {
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
    }

    deinit { wire.deallocate() }

    /// Call before backward.
    @inline(__always)
    public func begin() { nextBucket = 0 }

    /// Backward reports that every gradient at or above `offset` is final: start the buckets
    /// that are complete, and give the ones in flight a chance to progress.
    @inline(__always)
    public func finished(upTo offset: Int) {
        guard mode == .overlap, comm.size > 1 else { return }
        while nextBucket < buckets.count && buckets[nextBucket].lowerBound >= offset {
            start(buckets[nextBucket])
            nextBucket += 1
        }
        inCommunicator { comm.progress() }
    }

    /// Starts whatever is left, sums the extra slots, and waits for everything.
    @inline(__always)
    public func complete() {
        guard comm.size > 1 else { return }
        if mode == .single && precision == .fp32 {
            // The plain path: one blocking allreduce of gradients and loss sums together.
            inCommunicator { comm.allreduceSum(buffer, count: parameterCount + extraCount) }
            return
        }
        while nextBucket < buckets.count {
            start(buckets[nextBucket])
            nextBucket += 1
        }
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

    @inline(__always)
    func start(_ r: Range<Int>) {
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
