import Models

/// Why a dataset cannot be split into the requested batches.
public enum BatchingError: Error, CustomStringConvertible, Equatable {
    case localBatchTooSmall(globalBatch: Int, world: Int, localBatch: Int, classes: Int)
    case shardTooSmall(rank: Int, shardSize: Int, localBatch: Int)
    case labelMissing(rank: Int, label: Int)
    case moreRanksThanSamples(world: Int, samples: Int)

    public var description: String {
        switch self {
        case let .localBatchTooSmall(g, w, b, c):
            return "global batch \(g) over \(w) ranks gives local batches of \(b), fewer than the \(c) classes: every local batch must hold every label (use a global batch of at least \(w * c))"
        case let .shardTooSmall(rank, n, b):
            return "rank \(rank)'s shard has \(n) samples, fewer than one local batch of \(b)"
        case let .labelMissing(rank, label):
            return "rank \(rank)'s shard has no sample of label \(label), but every batch must hold every label: use fewer ranks or check the labels file"
        case let .moreRanksThanSamples(w, n):
            return "\(w) ranks but only \(n) training samples: at least one sample per rank is needed"
        }
    }
}
