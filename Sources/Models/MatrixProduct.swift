import COpenBLAS

/// Every matrix product of the models: row-major C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C,
/// cut into blocks that run as single-threaded `cblas_sgemm` calls on the rank's `WorkerPool`.
///
/// Why not OpenBLAS's own threads: on this project's machine OpenBLAS 0.3.21's threaded sgemm
/// deadlocked (both threads spinning in its level-3 synchronization) in about 1 of 20 short conv
/// runs; its idle threads spin for ~0.1 s after each call, competing with the pool that runs the
/// elementwise passes; and its results depend on the thread count. Here OpenBLAS runs one
/// thread per call (`Threading.set`), and the pool runs the blocks.
///
/// The blocks depend on the shape only, never on the thread count: the larger of M and N is cut
/// into `parts(_:)` pieces at multiples of 16 (OpenBLAS's kernels work in 16-wide panels), so a
/// model gives the same bits on 1, 2 or 3 threads, and a block is the same call whichever thread
/// runs it. K is never cut (that would change the order of the sums). Small products are one call.
public enum MatrixProduct {
    /// Products with fewer multiply-adds than this are one call: a block must be worth waking a
    /// thread for (~10 us of work at one core's ~45 G multiply-adds per second).
    static let minimumMultiplyAdds = 1 << 19
    /// Rows (or columns) a block should have at least; blocks are cut at multiples of `alignment`.
    static let blockTarget = 128
    static let alignment = 16
    /// At most this many blocks: every block repacks the other operand.
    static let maximumParts = 8

    /// How many blocks a dimension of `length` is cut into (before the small-product check).
    @inline(__always)
    static func parts(_ length: Int) -> Int { max(1, min(maximumParts, length / blockTarget)) }

    /// Row-major sgemm, split into shape-determined blocks over `WorkerPool.shared`.
    @inline(__always)
    public static func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, alpha: Float = 1,
                             _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                             beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let alongRows = m >= n
        let count = alongRows ? parts(m) : parts(n)
        if count == 1 || m * n * k < minimumMultiplyAdds || RankThreads.mode == .openblas {
            call(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let length = alongRows ? m : n
        // Equal blocks rounded up to the alignment; the last takes what is left.
        let block = ((length + count - 1) / count + alignment - 1) / alignment * alignment
        var pass = Pass(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c, ldc: ldc, alongRows: alongRows, block: block)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: length, size: block), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: Pass.self).pointee
            let r = WorkerPool.range(chunk, count: p.alongRows ? p.m : p.n, size: p.block)
            if p.alongRows {
                // Rows r of C and of op(A): A's rows if not transposed, else its columns.
                let a = p.transA ? p.a + r.lowerBound : p.a + r.lowerBound * p.lda
                MatrixProduct.call(p.transA, p.transB, r.count, p.n, p.k, p.alpha, a, p.lda, p.b, p.ldb, p.beta,
                                   p.c + r.lowerBound * p.ldc, p.ldc)
            } else {
                // Columns r of C and of op(B): B's columns if not transposed, else its rows.
                let b = p.transB ? p.b + r.lowerBound * p.ldb : p.b + r.lowerBound
                MatrixProduct.call(p.transA, p.transB, p.m, r.count, p.k, p.alpha, p.a, p.lda, b, p.ldb, p.beta,
                                   p.c + r.lowerBound, p.ldc)
            }
        }
    }

    /// One OpenBLAS call, its allocations counted (none single-threaded; see BLASAllocations).
    @inline(__always)
    static func call(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        BLASAllocations.counting {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// The arguments of a split product, for the WorkerPool.
    struct Pass {
        let transA: Bool, transB: Bool
        let m: Int, n: Int, k: Int
        let alpha: Float
        let a: UnsafePointer<Float>, lda: Int
        let b: UnsafePointer<Float>, ldb: Int
        let beta: Float
        let c: UnsafeMutablePointer<Float>, ldc: Int
        /// Blocks of rows of C (else of columns), `block` long.
        let alongRows: Bool
        let block: Int
    }
}
