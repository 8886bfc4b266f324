import CSparseProducts

/// A Linear layer's products when most of its input entries are exactly zero: MNIST pixels
/// (19% nonzero) and the ReLU outputs after the first hidden layer (~22% in the seed CVAE)
/// feed the two largest products of the encoder. There the forward y = x W^T and the weight
/// gradient dW = dy^T x touch only the nonzeros, about twice as fast as a dense sgemm. The
/// input gradient dx = dy W (dy is not sparse) is dense, except below a ReLU, where only its
/// entries at the input's nonzeros count (`maskedInputGradient`).
///
/// Whether a batch takes this path is decided per forward from its density alone (at most
/// `maximumDensity` nonzeros), and backward follows what forward chose. Every output is summed
/// over the row's (or column's) nonzeros in ascending order, in blocks cut by the shape only:
/// the bits do not depend on the thread count, and a row's forward does not depend on the
/// other rows of the batch. They differ from a dense sgemm's in the last bits (another order
/// of the same sums).
///
/// Legend: B rows of the batch (capacity: C), I = in features, O = out features,
/// Z nonzeros of the batch (at most B * I), P = ceil(O / 64) panels of 64 outputs.
public enum SparseInput {
    /// `runtime.sparse_inputs`, set once at setup: the default of new workspaces and contexts.
    public static var enabled = true
    /// Inputs denser than this go to the dense sgemm: the sparse kernels run at roughly a third
    /// of the multiply-add peak (each nonzero loads a panel row from L2), OpenBLAS's dense kernel
    /// at ~90%, so they win only well below ~40% nonzeros.
    public static let maximumDensity = 0.3
    /// Rows whose density decides the path (all of them in smaller batches).
    static let densityRows = 32
    /// Outputs per forward panel and per weight-gradient block (one pool chunk each).
    static let panelWidth = 64
    /// dy columns copied together in the weight gradient (CSparseProducts' block).
    static let packWidth = 32

    /// Whether a Linear of this shape reserves the scratch (narrow layers gain nothing).
    public static func applies(inFeatures: Int, outFeatures: Int) -> Bool { inFeatures >= 64 && outFeatures >= 8 }

    /// Scratch bytes of a layer, every region 64-byte aligned.
    public static func scratchBytes(capacity: Int, inFeatures: Int, outFeatures: Int) -> Int {
        Layout(capacity: capacity, inFeatures: inFeatures, outFeatures: outFeatures).bytes
    }

    /// Where each buffer lives in a layer's scratch.
    struct Layout {
        let capacity: Int, inFeatures: Int, outFeatures: Int
        var panels: Int { (outFeatures + SparseInput.panelWidth - 1) / SparseInput.panelWidth }
        static func aligned(_ n: Int) -> Int { (n + 63) / 64 * 64 }
        // Byte offsets.
        var header: Int { 0 }                                                           // [rows of the last sparse forward (0: dense), Z] Int64
        var rowCounts: Int { 64 }                                                       // [ceil(C / 32)] Int64: nonzeros per part of the CSR build
        var rowStart: Int { rowCounts + Layout.aligned(8 * WorkerPool.chunks(count: capacity, size: SparseInput.rowsPerPart)) } // [C + 1] Int32
        var rowIndex: Int { rowStart + Layout.aligned(4 * (capacity + 1)) }             // [C * I] Int32
        var rowValue: Int { rowIndex + Layout.aligned(4 * capacity * inFeatures) }      // [C * I] Float
        var columnStart: Int { rowValue + Layout.aligned(4 * capacity * inFeatures) }   // [I + 1] Int32
        var columnRow: Int { columnStart + Layout.aligned(4 * (inFeatures + 1)) }       // [C * I] Int32
        var columnValue: Int { columnRow + Layout.aligned(4 * capacity * inFeatures) }  // [C * I] Float
        var panel: Int { columnValue + Layout.aligned(4 * capacity * inFeatures) }      // [P, I, 64] Float: W^T by panels
        var pack: Int { panel + Layout.aligned(4 * panels * SparseInput.panelWidth * inFeatures) } // [P, C, 32] Float
        var bytes: Int { pack + Layout.aligned(4 * panels * capacity * SparseInput.packWidth) }
    }

    /// The pointers of a layer's scratch.
    struct Buffers {
        let header: UnsafeMutablePointer<Int64>
        let rowCounts: UnsafeMutablePointer<Int64>
        let rowStart: UnsafeMutablePointer<Int32>, rowIndex: UnsafeMutablePointer<Int32>, rowValue: UnsafeMutablePointer<Float>
        let columnStart: UnsafeMutablePointer<Int32>, columnRow: UnsafeMutablePointer<Int32>, columnValue: UnsafeMutablePointer<Float>
        let panel: UnsafeMutablePointer<Float>, pack: UnsafeMutablePointer<Float>

        init(_ scratch: UnsafeMutableRawPointer, _ l: Layout) {
            header = (scratch + l.header).assumingMemoryBound(to: Int64.self)
            rowCounts = (scratch + l.rowCounts).assumingMemoryBound(to: Int64.self)
            rowStart = (scratch + l.rowStart).assumingMemoryBound(to: Int32.self)
            rowIndex = (scratch + l.rowIndex).assumingMemoryBound(to: Int32.self)
            rowValue = (scratch + l.rowValue).assumingMemoryBound(to: Float.self)
            columnStart = (scratch + l.columnStart).assumingMemoryBound(to: Int32.self)
            columnRow = (scratch + l.columnRow).assumingMemoryBound(to: Int32.self)
            columnValue = (scratch + l.columnValue).assumingMemoryBound(to: Float.self)
            panel = (scratch + l.panel).assumingMemoryBound(to: Float.self)
            pack = (scratch + l.pack).assumingMemoryBound(to: Float.self)
        }
    }

    /// y[rows, O] = x[rows, I] W^T (no bias) over the nonzeros of x when the batch is sparse
    /// enough; returns false (having done nothing but count) when the dense sgemm should run.
    /// Records the choice in the scratch for `weightGradient`.
    @inline(__always)
    public static func forward(weights w: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               rows: Int, inFeatures: Int, outFeatures: Int, capacity: Int,
                               scratch: UnsafeMutableRawPointer, force: Bool = false) -> Bool {
        let layout = Layout(capacity: capacity, inFeatures: inFeatures, outFeatures: outFeatures)
        let b = Buffers(scratch, layout)
        b.header[0] = 0
        guard rows > 0, rows <= capacity else { return false }
        if !force {
            // The first rows stand for the batch (a dense layer pays for counting them only).
            let sampled = min(rows, densityRows) * inFeatures
            guard Double(dt_count_nonzero(x, Int64(sampled))) <= maximumDensity * Double(sampled) else { return false }
        }
        // The CSR form in parts of 32 rows over the pool, then joined on this thread (the same
        // arrays as one serial pass; serial, it kept the rank's other threads waiting).
        var build = RowsPass(x: x, rows: rows, inFeatures: inFeatures, buffers: b)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: rowsPerPart), &build) { raw, part in
            let p = raw.assumingMemoryBound(to: RowsPass.self).pointee
            let r = WorkerPool.range(part, count: p.rows, size: SparseInput.rowsPerPart)
            p.buffers.rowCounts[part] = dt_sparse_rows_part(p.x, Int32(r.lowerBound), Int32(r.upperBound), Int32(p.inFeatures),
                                                            p.buffers.rowStart, p.buffers.rowIndex, p.buffers.rowValue)
        }
        let z = dt_sparse_rows_join(Int32(rows), Int32(inFeatures), Int32(rowsPerPart), b.rowCounts, b.rowStart, b.rowIndex, b.rowValue)
        b.header[0] = Int64(rows)
        b.header[1] = z
        var pass = ForwardPass(w: w, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, buffers: b)
        WorkerPool.shared.run(chunks: layout.panels, &pass) { raw, panel in
            let p = raw.assumingMemoryBound(to: ForwardPass.self).pointee
            let o0 = panel * SparseInput.panelWidth
            let width = min(SparseInput.panelWidth, p.outFeatures - o0)
            let packed = p.buffers.panel + panel * SparseInput.panelWidth * p.inFeatures
            dt_pack_panel(p.w, Int32(p.inFeatures), Int32(o0), Int32(width), packed)
            dt_sparse_times_panel(p.buffers.rowStart, p.buffers.rowIndex, p.buffers.rowValue, Int32(p.rows),
                                  packed, Int32(width), p.y + o0, Int32(p.outFeatures))
        }
        return true
    }

    /// Rows per part of the parallel CSR build.
    static let rowsPerPart = 32

    struct RowsPass {
        let x: UnsafePointer<Float>
        let rows: Int, inFeatures: Int
        let buffers: Buffers
    }

    struct ForwardPass {
        let w: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let rows: Int, inFeatures: Int, outFeatures: Int
        let buffers: Buffers
    }

    /// dW[O, I] (+)= dy[rows, O]^T x[rows, I] over the nonzeros of x, when the forward of these
    /// rows took the sparse path; returns false otherwise (the caller runs the dense sgemm).
    @inline(__always)
    public static func weightGradient(dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>, rows: Int,
                                      inFeatures: Int, outFeatures: Int, capacity: Int, accumulate: Bool,
                                      scratch: UnsafeMutableRawPointer) -> Bool {
        let layout = Layout(capacity: capacity, inFeatures: inFeatures, outFeatures: outFeatures)
        let b = Buffers(scratch, layout)
        guard rows > 0, b.header[0] == Int64(rows) else { return false }
        dt_sparse_columns(b.rowStart, b.rowIndex, b.rowValue, Int32(rows), Int32(inFeatures), b.columnStart, b.columnRow, b.columnValue)
        var pass = GradientPass(dy: dy, dw: dw, rows: rows, capacity: capacity, inFeatures: inFeatures, outFeatures: outFeatures,
                                beta: accumulate ? 1 : 0, buffers: b)
        WorkerPool.shared.run(chunks: layout.panels, &pass) { raw, block in
            let p = raw.assumingMemoryBound(to: GradientPass.self).pointee
            let o0 = block * SparseInput.panelWidth
            let o1 = min(o0 + SparseInput.panelWidth, p.outFeatures)
            dt_dense_t_times_sparse(p.buffers.columnStart, p.buffers.columnRow, p.buffers.columnValue, Int32(p.inFeatures),
                                    Int32(p.rows), p.dy, Int32(p.outFeatures), Int32(o0), Int32(o1), p.beta, p.dw,
                                    Int32(p.inFeatures), p.buffers.pack + block * p.capacity * SparseInput.packWidth)
        }
        return true
    }

    /// dx[rows, I] = dy W at the input's nonzeros and 0 elsewhere, from the panels and nonzeros
    /// of the sparse forward of these rows (the parameters have not changed since); for a layer
    /// below a ReLU, whose backward zeroes the rest. Returns false when forward was dense.
    @inline(__always)
    public static func maskedInputGradient(dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, rows: Int,
                                           inFeatures: Int, outFeatures: Int, capacity: Int,
                                           scratch: UnsafeMutableRawPointer) -> Bool {
        let b = Buffers(scratch, Layout(capacity: capacity, inFeatures: inFeatures, outFeatures: outFeatures))
        guard rows > 0, b.header[0] == Int64(rows) else { return false }
        var pass = MaskedPass(dy: dy, dx: dx, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, buffers: b)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: maskedRowsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: MaskedPass.self).pointee
            let r = WorkerPool.range(chunk, count: p.rows, size: SparseInput.maskedRowsPerChunk)
            dt_masked_times_panels(p.buffers.rowStart, p.buffers.rowIndex, Int32(r.lowerBound), Int32(r.upperBound),
                                   Int32(p.inFeatures), Int32(p.outFeatures), p.dy, Int32(p.outFeatures), p.buffers.panel,
                                   p.dx, Int32(p.inFeatures))
        }
        return true
    }

    /// Rows per chunk of the masked input gradient.
    static let maskedRowsPerChunk = 32

    struct MaskedPass {
        let dy: UnsafePointer<Float>
        let dx: UnsafeMutablePointer<Float>
        let rows: Int, inFeatures: Int, outFeatures: Int
        let buffers: Buffers
    }

    struct GradientPass {
        let dy: UnsafePointer<Float>
        let dw: UnsafeMutablePointer<Float>
        let rows: Int, capacity: Int, inFeatures: Int, outFeatures: Int
        let beta: Float
        let buffers: Buffers
    }
}
