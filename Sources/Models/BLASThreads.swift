import COpenBLAS

/// The number of threads OpenBLAS uses in this process.
///
/// The elementwise passes could run on as many (`WorkerPool.shared.setThreads(n)` here), with
/// bitwise identical results; that is not switched on yet: on the loaded 2-core development
/// machine the pool made forward and backward slower at 1 rank x 2 threads (a woken worker
/// competes with OpenBLAS's threads), and it awaits a measurement on a quiet machine.
public enum BLASThreads {
    public static func set(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
        // The pool is a lazy global: create it here, at setup, not at the first pass of the
        // step loop (its object, mutex and condition would count as three step allocations).
        WorkerPool.shared.setThreads(1)
    }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
