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
