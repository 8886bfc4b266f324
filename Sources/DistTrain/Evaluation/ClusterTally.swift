#if canImport(Glibc)
import Glibc
#endif

/// A clusters x classes contingency table of hard cluster assignments against true labels,
/// tallied record by record (on each rank), summed across ranks, then scored with
/// `Clustering.nmi`. A categorical latent assigns each record to the argmax of its category
/// logits.
public struct ClusterTally: Equatable, Sendable {
    /// Rows of the table: the model's categories.
    public let clusters: Int
    /// Columns of the table: the true classes.
    public let classes: Int
    /// Row-major counts: `counts[cluster * classes + label]`.
    public var counts: [Double]

    /// An empty table.
    public init(clusters: Int, classes: Int) {
        self.init(clusters: clusters, classes: classes, counts: [Double](repeating: 0, count: clusters * classes))
    }

    /// A table from its counts (for example summed across ranks with `Communicator.sum`).
    public init(clusters: Int, classes: Int, counts: [Double]) {
        precondition(counts.count == clusters * classes, "a \(clusters) x \(classes) table needs \(clusters * classes) counts")
        self.clusters = clusters
        self.classes = classes
        self.counts = counts
    }

    /// The index of the largest of `count` logits (the first one on ties).
    @inline(__always)
    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for j in 1..<max(count, 1) where logits[j] > logits[best] { best = j }
        return best
    }

    /// Counts one record assigned to `cluster` whose true class is `label`.
    @inline(__always)
    public mutating func add(cluster: Int, label: Int) {
        counts[cluster * classes + label] += 1
    }

    /// Counts one record assigned to the argmax of its `clusters` logits.
    @inline(__always)
    public mutating func add(logits: UnsafePointer<Float>, label: Int) {
        add(cluster: ClusterTally.argmax(logits, count: clusters), label: label)
    }

    /// Records counted.
    public var total: Double { counts.reduce(0, +) }

    /// Normalized mutual information between the assignments and the labels (arithmetic
    /// normalization, as `Clustering.nmi`).
    public var nmi: Double { Clustering.nmi(contingency: counts, rows: clusters, cols: classes) }
}
