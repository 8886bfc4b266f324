/// Who runs a rank's threads (`runtime.threading`).
public enum ThreadingMode: String, CaseIterable, Sendable {
    /// One pool of the rank's threads runs every phase: each matrix product cut into
    /// shape-determined blocks (single-threaded OpenBLAS calls), the elementwise passes and Adam
    /// in fixed chunks. The same bits for any thread count.
    case pool
    /// OpenBLAS's own threads run each product; the passes between products and Adam run on the
    /// calling thread. The bits depend on the thread count. (Before 2026-11-30 the only mode.)
    case openblas
}
