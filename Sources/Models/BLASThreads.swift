import COpenBLAS

/// The number of threads OpenBLAS uses in this process; the elementwise passes (WorkerPool)
/// get the same number, so no phase of a step runs on fewer threads than the products.
public enum BLASThreads {
    public static func set(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
        WorkerPool.shared.setThreads(n)
    }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
