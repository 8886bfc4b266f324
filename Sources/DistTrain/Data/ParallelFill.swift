import Models

extension DatasetShard {
    /// Rows 0 ..< `rows` of the workspace from samples `locals[0 ..< rows]` (or, when `locals` is
    /// nil, the consecutive samples from `firstLocal`), as `fill(_:row:local:...)` fills one row,
    /// in parts of 32 rows over the worker pool. Every row is written by one part only and
    /// depends on nothing but its sample, so the workspace holds the same bytes for any thread
    /// count. Filling a batch of 256 rows on one thread kept a rank's other threads waiting about
    /// 2% of a step.
    public func fill(_ ws: VAEWorkspace, rows: Int, locals: UnsafePointer<Int32>?, firstLocal: Int = 0,
                     architecture a: VAEArchitecture, binarize: UInt64? = nil) {
        var pass = FillPass(shard: self, workspace: ws, locals: locals, firstLocal: firstLocal, architecture: a, binarize: binarize, rows: rows)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: DatasetShard.rowsPerPart), &pass) { raw, part in
            let p = raw.assumingMemoryBound(to: FillPass.self)
            for r in WorkerPool.range(part, count: p.pointee.rows, size: DatasetShard.rowsPerPart) {
                let local = p.pointee.locals.map { Int($0[r]) } ?? p.pointee.firstLocal + r
                p.pointee.shard.fill(p.pointee.workspace, row: r, local: local, architecture: p.pointee.architecture, binarize: p.pointee.binarize)
            }
        }
    }

    /// Rows per part of a pooled fill.
    static let rowsPerPart = 32

    struct FillPass {
        let shard: DatasetShard
        let workspace: VAEWorkspace
        let locals: UnsafePointer<Int32>?
        let firstLocal: Int
        let architecture: VAEArchitecture
        let binarize: UInt64?
        let rows: Int
    }
}
