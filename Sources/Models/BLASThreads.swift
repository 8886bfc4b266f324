import COpenBLAS

/// The number of threads OpenBLAS uses in this process, and the number the elementwise passes
/// and Adam use (`WorkerPool.shared`).
public enum BLASThreads {
    /// `n` OpenBLAS threads and `elementwise` threads for the passes between the products (by
    /// default as many). Call at setup: the pool's threads are created here, never in the step loop.
    public static func set(_ n: Int, elementwise: Int? = nil) {
        openblas_set_num_threads(Int32(max(1, n)))
        WorkerPool.shared.setThreads(max(1, elementwise ?? n))
    }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
