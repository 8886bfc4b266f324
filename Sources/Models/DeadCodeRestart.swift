/// Dead-code restart of a VQ-VAE's codebook: a code that no position of the global batch
/// chose in `restartSteps` training forwards in a row is re-seeded with one encoder output
/// z_e of the current batch, so codes stranded far from the encoder's outputs (which neither
/// the gradient nor the EMA ever moves) get back into use.
///
/// Every rank must restart the same codes with the same vectors. The counts of the step go
/// through the reducer (summed over ranks), so every rank sees the same dead codes. The
/// candidate of dead code k is the global position u = hash(key, k) mod (global rows x S),
/// numbering the global batch's rows rank by rank; the rank holding it writes that z_e into
/// slot k's D values and the others write zeros, and a second sum over ranks hands the
/// vector to everyone exactly (x + 0 = x). The choice depends on the global row number, not
/// on the rank holding it: one process of B rows picks what two ranks of B/2 rows pick.
///
/// A gradient codebook is overwritten in the parameter buffer (the caller resets those
/// codes' Adam moments, see `restarted`); an EMA codebook in the state buffer, with its
/// cluster size N_k = 1 and sum m_k = the new vector, so the next EMA step keeps it.
///
/// Dimension legend: K codes, D code dimension, S positions per sample, B rows of this rank.
extension VectorQuantizer {
    public static let idleTensorName = "quantizer.steps_unused"
    /// Noise stream of the candidate draws (disjoint from Dropout's and the trainer's).
    public static let restartStream: UInt64 = 0x7E57_A27

    /// Float64 scratch a restart needs: counts [K], then candidate slots [K, D].
    public var restartScratchCount: Int { restartSteps > 0 ? codes + codes * dimension : 0 }

    /// Counts the last forward's assignments (`codeIndices` [B, S], z_e rows [B, D, S]) over
    /// the global batch, advances the idle counts in `state`, and re-seeds every code idle for
    /// `restartSteps` forwards. This rank's rows are rows `rowOffset..<rowOffset + rows` of
    /// the global batch's `globalRows`; `key` must be the same on every rank and differ from
    /// step to step. `scratch` [K + K D] float64; the indices of the codes re-seeded go to
    /// `restarted` [K]. Returns how many there were.
    public func restartDeadCodes(params: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
                                 zE: UnsafePointer<Float>, codeIndices: UnsafePointer<Int32>, rows: Int,
                                 rowOffset: Int, globalRows: Int, key: UInt64, reducer: (any BatchStatisticsReducer)?,
                                 scratch: UnsafeMutablePointer<Double>, restarted: UnsafeMutablePointer<Int32>) -> Int {
        precondition(restartSteps > 0 && rowOffset >= 0 && rowOffset + rows <= globalRows)
        let K = codes, D = dimension, S = positions
        let counts = scratch, slots = scratch + K   // [K], [K, D]
        counts.update(repeating: 0, count: K)
        for i in 0..<(rows * S) { counts[Int(codeIndices[i])] += 1 }
        reducer?.sum(counts, count: K)
        let idle = state + idleOffset   // [K]
        var dead = 0
        for k in 0..<K {
            if counts[k] > 0 {
                idle[k] = 0
            } else {
                idle[k] += 1
                if idle[k] >= Float(restartSteps) { restarted[dead] = Int32(k); dead += 1 }
            }
        }
        guard dead > 0, globalRows > 0 else { return 0 }
        // Slots [dead, D]: the candidate of the i-th dead code, from whichever rank holds it.
        slots.update(repeating: 0, count: dead * D)
        let total = UInt64(globalRows * S)
        for i in 0..<dead {
            let u = Int(SplitMix64.mix(key &+ UInt64(restarted[i]) &* 0xD1B5_4A32_D192_ED03) % total)
            let r = u / S - rowOffset, s = u % S
            guard r >= 0 && r < rows else { continue }
            let z = zE + r * D * S
            for d in 0..<D { slots[i * D + d] = Double(z[d * S + s]) }
        }
        reducer?.sum(slots, count: dead * D)
        let book = usesEMA ? state + codebookOffset : params + codebookOffset
        for i in 0..<dead {
            let k = Int(restarted[i])
            for d in 0..<D { book[k * D + d] = Float(slots[i * D + d]) }
            idle[k] = 0
            if usesEMA {
                state[clusterSizeOffset + k] = 1
                for d in 0..<D { state[embedSumOffset + k * D + d] = book[k * D + d] }
            }
        }
        return dead
    }
}
