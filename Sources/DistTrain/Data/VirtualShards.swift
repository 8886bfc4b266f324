/// Deterministic mode's fixed split of the data set and of every global batch into
/// `VirtualShards.count` pieces, the same whatever the number of ranks.
///
/// Virtual shard v holds records [n v / 24, n (v + 1) / 24) and contributes `pieceRows(v)`
/// rows to every global batch (B / 24, the first B mod 24 pieces one more). Rank r of N owns
/// the contiguous pieces [24 r / N, 24 (r + 1) / N) and loads only their records, so N must
/// divide 24: 1, 2, 3, 4, 6, 8, 12 or 24 ranks. Because a piece's rows, their order and
/// their gradient never depend on N, neither does anything summed from pieces.
public struct VirtualShards: Equatable, Sendable {
    /// 24 = lcm(1, 2, 3, 4, 6, 8): the world sizes a cluster of 1 to 8 ranks is likely to use.
    public static let count = 24
    public let globalBatch: Int
    public let world: Int
    /// Records in the training set.
    public let samples: Int

    /// Checks that `world` divides 24 and that every piece can hold every label and at least
    /// one batch share (`DeterminismError` otherwise).
    public init(globalBatch: Int, world: Int, samples: Int, classes: Int) throws {
        guard world >= 1, VirtualShards.count % world == 0 else { throw DeterminismError.worldSize(world) }
        self.globalBatch = globalBatch
        self.world = world
        self.samples = samples
        guard globalBatch / VirtualShards.count >= classes else {
            throw DeterminismError.batchTooSmall(globalBatch: globalBatch, classes: classes)
        }
        for v in 0..<VirtualShards.count where shard(v).count < pieceRows(v) {
            throw DeterminismError.shardTooSmall(piece: v, records: shard(v).count, rows: pieceRows(v))
        }
    }

    /// Records of virtual shard v in a set of `total` records.
    public static func shard(_ v: Int, of total: Int) -> Range<Int> {
        (total * v / count)..<(total * (v + 1) / count)
    }

    /// Training records of virtual shard v.
    public func shard(_ v: Int) -> Range<Int> { VirtualShards.shard(v, of: samples) }

    /// Rows piece v contributes to every global batch.
    public func pieceRows(_ v: Int) -> Int {
        globalBatch / VirtualShards.count + (v < globalBatch % VirtualShards.count ? 1 : 0)
    }

    /// The pieces rank r owns.
    public func pieces(rank r: Int) -> Range<Int> {
        (VirtualShards.count * r / world)..<(VirtualShards.count * (r + 1) / world)
    }

    /// Records rank r loads out of `total` (the union of its virtual shards).
    public func records(rank r: Int, of total: Int) -> Range<Int> {
        let p = pieces(rank: r)
        return VirtualShards.shard(p.lowerBound, of: total).lowerBound..<VirtualShards.shard(p.upperBound - 1, of: total).upperBound
    }

    /// Rank r's rows of every global batch (its pieces' rows together).
    public func localBatch(rank r: Int) -> Int { pieces(rank: r).reduce(0) { $0 + pieceRows($1) } }

    /// The largest piece, in rows: the deterministic step's micro-batch.
    public var largestPiece: Int { pieceRows(0) }
}

/// Why a run cannot be deterministic as asked.
public enum DeterminismError: Error, CustomStringConvertible, Equatable, StatusCarrying {
    case worldSize(Int)
    case batchTooSmall(globalBatch: Int, classes: Int)
    case shardTooSmall(piece: Int, records: Int, rows: Int)
    case labelMissing(piece: Int, label: Int)
    /// A feature whose cross-rank sums are not exact yet.
    case notCovered(field: String, why: String)

    public var description: String {
        switch self {
        case let .worldSize(n):
            return "runtime.deterministic needs a number of ranks that divides \(VirtualShards.count) (1, 2, 3, 4, 6, 8, 12 or 24), got \(n)"
        case let .batchTooSmall(g, c):
            return "runtime.deterministic splits every global batch into \(VirtualShards.count) pieces that each hold every label: global batch \(g) gives pieces of \(g / VirtualShards.count) rows, fewer than the \(c) classes (use a global batch of at least \(VirtualShards.count * c))"
        case let .shardTooSmall(v, n, b):
            return "runtime.deterministic: virtual shard \(v) has \(n) training records, fewer than its \(b) rows of a global batch"
        case let .labelMissing(v, label):
            return "runtime.deterministic: virtual shard \(v) (1/\(VirtualShards.count) of the training set) has no sample of label \(label), but every piece of a batch must hold every label"
        case let .notCovered(field, why):
            return "runtime.deterministic does not cover \(field) yet (\(why)): turn one of them off"
        }
    }

    /// A world size that does not divide 24 is a bad command line (mpirun -n); the rest are bad input.
    public var exitStatus: ExitStatus {
        if case .worldSize = self { return .usage }
        return .badInput
    }
}
