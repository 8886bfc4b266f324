import COpenBLAS
import Testing
@testable import Models

/// MatrixProduct: the blocked product equals one OpenBLAS call to rounding for every transpose
/// and split direction, and gives the same bits on 1, 2 and 3 threads.
struct MatrixProductTests {
    /// op(A)[m, k] op(B)[k, n] + beta C with random inputs: (blocked on `threads`, one call).
    static func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, beta: Float, threads: Int) -> (blocked: [Float], single: [Float]) {
        var rng = SplitMix64(seed: UInt64(m * 31 + n * 7 + k))
        let a = (0..<(m * k)).map { _ in rng.uniform(-1, 1) }
        let b = (0..<(k * n)).map { _ in rng.uniform(-1, 1) }
        let c0 = (0..<(m * n)).map { _ in rng.uniform(-1, 1) }
        let lda = transA ? m : k, ldb = transB ? k : n
        var blocked = c0, single = c0
        RankThreads.set(threads)
        defer { RankThreads.set(1) }
        MatrixProduct.sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta: beta, &blocked, n)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, &single, Int32(n))
        return (blocked, single)
    }

    @Test("blocked products equal one sgemm call (all transposes, rows and columns split, beta 0 and 1)",
          arguments: [(false, false), (false, true), (true, false), (true, true)])
    func equalsOneCall(transposes: (Bool, Bool)) {
        // 300 x 200: cut along the rows; 130 x 790: along the columns (6 blocks, the last shorter).
        for (m, n, k) in [(300, 200, 96), (130, 790, 64)] {
            for beta: Float in [0, 1] {
                let r = Self.product(transA: transposes.0, transB: transposes.1, m: m, n: n, k: k, beta: beta, threads: 2)
                let worst = zip(r.blocked, r.single).map { abs($0 - $1) }.max()!
                #expect(worst < 1e-4, "\(m)x\(n)x\(k) beta \(beta) transposes \(transposes): off by \(worst)")
            }
        }
    }

    @Test("the blocks depend on the shape only: the same bits on 1, 2 and 3 threads")
    func sameBitsAnyThreads() {
        for (m, n, k) in [(256, 512, 794), (784, 512, 256)] {
            let one = Self.product(transA: false, transB: true, m: m, n: n, k: k, beta: 0, threads: 1).blocked.map(\.bitPattern)
            for threads in [2, 3] {
                let many = Self.product(transA: false, transB: true, m: m, n: n, k: k, beta: 0, threads: threads).blocked.map(\.bitPattern)
                #expect(many == one, "\(m)x\(n)x\(k): \(threads) threads give other bits")
            }
        }
    }

    @Test("blocks: the larger dimension cut into length/128 parts (1 to 8) at multiples of 16")
    func blockCounts() {
        #expect(MatrixProduct.parts(100) == 1)
        #expect(MatrixProduct.parts(256) == 2)
        #expect(MatrixProduct.parts(794) == 6)
        #expect(MatrixProduct.parts(5000) == 8)
    }
}
