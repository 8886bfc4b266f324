#if canImport(Glibc)
import Glibc
#endif

/// Clustering quality of unsupervised assignments against ground-truth labels.
public enum Clustering {
    /// Normalized mutual information with arithmetic-mean normalization (scikit-learn's default):
    /// NMI = I(a; b) / ((H(a) + H(b)) / 2), natural logs. Label values are arbitrary integers.
    public static func nmi(predicted: [Int], truth: [Int]) -> Double {
        precondition(predicted.count == truth.count, "labelings must have the same length")
        let rowIndex = Dictionary(Set(predicted).sorted().enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let colIndex = Dictionary(Set(truth).sorted().enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let rows = rowIndex.count, cols = colIndex.count
        var table = [Double](repeating: 0, count: rows * cols)
        for (p, t) in zip(predicted, truth) { table[rowIndex[p]! * cols + colIndex[t]!] += 1 }
        return nmi(contingency: table, rows: rows, cols: cols)
    }

    /// NMI from a rows x cols contingency table of counts (row-major): rows are predicted
    /// clusters, columns true classes. Empty rows and columns are ignored.
    public static func nmi(contingency n: [Double], rows: Int, cols: Int) -> Double {
        precondition(n.count == rows * cols)
        var rowSum = [Double](repeating: 0, count: rows), colSum = [Double](repeating: 0, count: cols)
        var total = 0.0
        for i in 0..<rows {
            for j in 0..<cols {
                rowSum[i] += n[i * cols + j]; colSum[j] += n[i * cols + j]; total += n[i * cols + j]
            }
        }
        let usedRows = rowSum.filter { $0 > 0 }.count, usedCols = colSum.filter { $0 > 0 }.count
        // As scikit-learn: two single-cluster (or empty) labelings agree perfectly.
        if (usedRows <= 1 && usedCols <= 1) { return 1 }
        func entropy(_ sums: [Double]) -> Double {
            sums.reduce(0.0) { $1 > 0 ? $0 - ($1 / total) * log($1 / total) : $0 }
        }
        var mi = 0.0
        for i in 0..<rows where rowSum[i] > 0 {
            for j in 0..<cols where n[i * cols + j] > 0 {
                let nij = n[i * cols + j]
                mi += (nij / total) * log(nij * total / (rowSum[i] * colSum[j]))
            }
        }
        mi = max(mi, 0)
        let normalizer = (entropy(rowSum) + entropy(colSum)) / 2
        return mi / max(normalizer, Double.ulpOfOne)
    }
}

/// The Gumbel-softmax temperature schedule (categorical latents):
/// tau = max(tau_min, tau_start * exp(-tau_decay * step)).
public enum Temperature {
    public static func at(step: Int, config: TrainConfig) -> Float {
        let t = config.training
        return Float(max(t.tauMin, t.tauStart * exp(-t.tauDecay * Double(step))))
    }
}

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
