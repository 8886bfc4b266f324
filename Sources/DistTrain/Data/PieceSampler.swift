import Models

/// Deterministic mode's sampler: every piece (virtual shard) of a rank draws its share of
/// each batch with its own `StratifiedSampler`, seeded by (seed, epoch, piece) and never by
/// the rank, so the samples of global step t are a pure function of (seed, epoch, t) at any
/// world size. Each piece holds every label (its quota is at least one per label), hence so
/// does every global batch.
///
/// A rank's batch is its pieces' shares one after another, in piece order; indices are local
/// to the rank's loaded records (the union of its virtual shards).
public struct PieceSampler: BatchSampler {
    /// Steps per epoch: set to the minimum over all 24 pieces (an allreduce) by the caller.
    public var steps: Int
    /// The most steps this rank's pieces can fill.
    public let maxSteps: Int
    /// One sampler per local piece, in piece order.
    let samplers: [StratifiedSampler]
    /// Offset of each local piece's first record in the rank's loaded records.
    let offsets: [Int32]
    public let localBatch: Int

    /// `labels`: the rank's loaded records (`shards.records(rank:of:)`).
    public init(labels: [UInt8], classes: Int, shards: VirtualShards, rank: Int, seed: UInt64) throws {
        let pieces = shards.pieces(rank: rank)
        let first = shards.shard(pieces.lowerBound).lowerBound
        var samplers: [StratifiedSampler] = []
        var offsets: [Int32] = []
        for v in pieces {
            let records = shards.shard(v)
            let slice = Array(labels[(records.lowerBound - first)..<(records.upperBound - first)])
            do {
                samplers.append(try StratifiedSampler(labels: slice, classes: classes, localBatch: shards.pieceRows(v),
                                                      seed: PieceSampler.seed(seed), rank: v))
            } catch BatchingError.labelMissing(_, let label) {
                throw DeterminismError.labelMissing(piece: v, label: label)
            }
            offsets.append(Int32(records.lowerBound - first))
        }
        self.samplers = samplers
        self.offsets = offsets
        localBatch = shards.localBatch(rank: rank)
        maxSteps = samplers.map(\.maxSteps).min()!
        steps = maxSteps
    }

    /// The pieces' generator seed: another stream than normal mode's rank samplers.
    static func seed(_ seed: UInt64) -> UInt64 { SplitMix64.mix(seed ^ 0xDE7E_2A11_5A3B_1E00) }

    public func order(epoch: Int) -> [Int32] {
        var order = [Int32](repeating: 0, count: steps * localBatch)
        var column = 0
        for (sampler, offset) in zip(samplers, offsets) {
            var s = sampler
            s.steps = steps
            let own = s.order(epoch: epoch)
            let b = s.localBatch
            for step in 0..<steps {
                for i in 0..<b { order[step * localBatch + column + i] = own[step * b + i] + offset }
            }
            column += b
        }
        return order
    }

    /// Rows of each local piece, in piece order.
    public var pieceRows: [Int] { samplers.map(\.localBatch) }
}
