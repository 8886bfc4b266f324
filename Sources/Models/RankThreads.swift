import COpenBLAS

/// The threads a rank computes on: set once at setup, before any product.
public enum RankThreads {
    /// The threads per rank, and who runs them.
    public private(set) static var count = 1
    public private(set) static var mode = ThreadingMode.pool

    /// Uses `n` threads in `mode`. The pool's threads are created here (it allocates), never in
    /// the step loop.
    public static func set(_ n: Int, mode: ThreadingMode = .pool) {
        let n = max(1, n)
        count = n
        self.mode = mode
        switch mode {
        case .pool:
            openblas_set_num_threads(1)
            WorkerPool.shared.setThreads(n)
        case .openblas:
            openblas_set_num_threads(Int32(n))
            WorkerPool.shared.setThreads(1)
        }
    }

    /// "2 threads (pool)", for logs.
    public static var description: String { "\(count) thread\(count == 1 ? "" : "s") (\(mode.rawValue))" }
}
