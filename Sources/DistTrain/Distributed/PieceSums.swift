/// Small per-piece sums made exact across ranks: every piece (virtual shard) writes its values
/// into its own slot, the slots of pieces on other ranks stay zero, one float64 allreduce
/// fills in every slot (each slot is one rank's value plus zeros: exact in any order), and
/// the totals are then added in piece order on every rank, as one rank holding all 24 pieces
/// would add them.
///
/// Deterministic mode's loss sums, BatchNorm statistics and test-loss sums go through it;
/// the gradient, too large for 24 slots, goes through `ExactGradientSum` instead.
final class PieceSums {
    let comm: Communicator
    /// Values per piece.
    let width: Int
    /// Values after the slots that are summed as plain numbers (counts that are integers).
    let extra: Int
    /// [24 * width + extra] slot v holds piece v's values.
    let values: UnsafeMutablePointer<Double>
    let counter: GradientReducer?

    init(comm: Communicator, width: Int, extra: Int = 0, counter: GradientReducer? = nil) {
        self.comm = comm
        self.width = width
        self.extra = extra
        self.counter = counter
        values = .allocate(capacity: max(VirtualShards.count * width + extra, 1))
        clear()
    }

    deinit { values.deallocate() }

    var count: Int { VirtualShards.count * width + extra }

    func clear() { values.update(repeating: 0, count: count) }

    /// Piece v's slot [width].
    @inline(__always)
    func slot(_ v: Int) -> UnsafeMutablePointer<Double> { values + v * width }

    /// The values after the slots [extra].
    var extras: UnsafeMutablePointer<Double> { values + VirtualShards.count * width }

    /// Fills in every rank's slots (and sums the extras).
    func share() {
        if let counter { counter.inCommunicator { comm.allreduceSum(values, count: count) } } else { comm.allreduceSum(values, count: count) }
    }

    /// Element j of every slot, added in piece order.
    func total(_ j: Int) -> Double {
        var s = 0.0
        for v in 0..<VirtualShards.count { s += slot(v)[j] }
        return s
    }
}
