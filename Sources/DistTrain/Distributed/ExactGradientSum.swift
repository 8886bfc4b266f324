import Models

/// Deterministic mode's gradient allreduce: the sum over all 24 pieces (virtual shards) of
/// their gradients, exactly, so the result has the same bits at any world size.
///
/// Each rank computes one gradient per local piece into `pieceGrads`. Per tensor: the largest
/// magnitude over the local pieces, an int64 max-allreduce of those (one value per tensor),
/// then every piece's values in 64-bit fixed point at that tensor's scale (`FixedPoint`),
/// summed locally and by an int64 sum-allreduce, and scaled back into the gradient buffer.
/// A NaN or infinity anywhere in a tensor makes the whole summed tensor NaN, so the trainer's
/// finiteness check names it and stops every rank at the same step.
///
/// Wire bytes per step: 8 per parameter (int64) plus 8 per tensor, against 4 per parameter
/// for the float32 allreduce of normal mode.
final class ExactGradientSum {
    let comm: Communicator
    let parameterCount: Int
    /// Local pieces (this rank's virtual shards).
    let pieces: Int
    /// The ranges summed with one scale each: the exported tensors and the gaps between them.
    let tensors: [Range<Int>]
    /// [pieces, parameterCount] one gradient per local piece, in piece order.
    let pieceGrads: FloatBuffer
    /// [parameterCount] the pieces' sum in fixed point (the allreduce buffer).
    let fixed: UnsafeMutablePointer<Int64>
    /// [tensors] largest magnitude bits per tensor (the max-allreduce buffer).
    let maxBits: UnsafeMutablePointer<Int64>
    /// Counts MPI's allocations apart from ours (the normal reducer's counter).
    let counter: GradientReducer

    init(comm: Communicator, layout: ParameterLayout, pieces: Int, counter: GradientReducer) {
        self.comm = comm
        parameterCount = layout.totalCount
        self.pieces = pieces
        tensors = ExactGradientSum.ranges(layout)
        pieceGrads = FloatBuffer(count: pieces * layout.totalCount)
        fixed = .allocate(capacity: max(layout.totalCount, 1))
        maxBits = .allocate(capacity: max(tensors.count, 1))
        self.counter = counter
    }

    deinit {
        fixed.deallocate()
        maxBits.deallocate()
    }

    /// The exported tensors in offset order, with every gap between them as a range of its own,
    /// covering [0, totalCount).
    static func ranges(_ layout: ParameterLayout) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var next = 0
        for slot in layout.exported.sorted(by: { $0.offset < $1.offset }) where slot.count > 0 {
            let start = max(slot.offset, next)
            if start > next { out.append(next..<start) }
            if slot.offset + slot.count > start { out.append(start..<(slot.offset + slot.count)) }
            next = max(next, slot.offset + slot.count)
        }
        if next < layout.totalCount { out.append(next..<layout.totalCount) }
        return out
    }

    /// Piece i's gradient buffer [parameterCount].
    @inline(__always)
    func piece(_ i: Int) -> UnsafeMutablePointer<Float> { pieceGrads.base + i * parameterCount }

    /// Sums every rank's `pieceGrads` into `out` [parameterCount], the same bits on every rank
    /// and at every world size.
    func reduce(into out: UnsafeMutablePointer<Float>) {
        let p = parameterCount
        for (t, r) in tensors.enumerated() {
            var m: Int64 = 0
            for i in 0..<pieces { m = max(m, FixedPoint.largestMagnitude(piece(i) + r.lowerBound, count: r.count)) }
            maxBits[t] = m
        }
        counter.inCommunicator { comm.allreduceMax(maxBits, count: tensors.count) }
        fixed.update(repeating: 0, count: p)
        for (t, r) in tensors.enumerated() where maxBits[t] <= FixedPoint.largestFiniteBits {
            let shift = FixedPoint.shift(maxBits: maxBits[t])
            for i in 0..<pieces {
                FixedPoint.accumulate(piece(i) + r.lowerBound, into: fixed + r.lowerBound, count: r.count, shift: shift)
            }
        }
        counter.inCommunicator { comm.allreduceSum(fixed, count: p) }
        for (t, r) in tensors.enumerated() {
            if maxBits[t] > FixedPoint.largestFiniteBits {
                (out + r.lowerBound).update(repeating: .nan, count: r.count)
            } else {
                let shift = FixedPoint.shift(maxBits: maxBits[t])
                FixedPoint.dequantize(fixed + r.lowerBound, into: out + r.lowerBound, count: r.count, shift: shift)
            }
        }
    }
}
