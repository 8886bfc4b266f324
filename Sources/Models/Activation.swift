/// Hidden-layer nonlinearity. Both kinds satisfy act(x) > 0 exactly when x > 0, so the
/// backward pass needs only the stored outputs, not the pre-activations.
public enum Activation: Equatable, Sendable {
    case relu
    case leakyReLU(slope: Float)

    /// Slope applied to negative inputs (0 for ReLU).
    public var negativeSlope: Float {
        switch self {
        case .relu: return 0
        case let .leakyReLU(slope): return slope
        }
    }

    /// y = act(y + bias) over a [rows, width] row-major block: the bias add and the
    /// activation share one pass over memory.
    /// Rows are split over the WorkerPool.
    @inline(__always)
    public func biasForward(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, width: Int) {
        var pass = RowPass(y: y, bias: bias, rows: rows, width: width, slope: negativeSlope)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: rows, size: pass.rowsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: RowPass.self).pointee
            for r in WorkerPool.range(chunk, count: p.rows, size: p.rowsPerChunk) {
                let row = p.y + r * p.width
                for j in 0..<p.width {
                    let v = row[j] + p.bias[j]
                    row[j] = v > 0 ? v : v * p.slope
                }
            }
        }
    }

    /// The arguments of one row-wise pass (bias + activation, or bias alone), for the WorkerPool.
    struct RowPass {
        var y: UnsafeMutablePointer<Float>
        var bias: UnsafePointer<Float>
        var rows: Int
        var width: Int
        var slope: Float
        var rowsPerChunk: Int { Activation.rowsPerChunk(width: width) }
    }

    /// dy *= act'(x), read off the stored outputs y; split over the WorkerPool.
    @inline(__always)
    public func backward(_ dy: UnsafeMutablePointer<Float>, outputs y: UnsafePointer<Float>, count: Int) {
        var pass = BackwardPass(dy: dy, y: y, count: count, slope: negativeSlope)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: count, size: Activation.elementsPerChunk), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: BackwardPass.self).pointee
            for i in WorkerPool.range(chunk, count: p.count, size: Activation.elementsPerChunk) {
                p.dy[i] = p.y[i] > 0 ? p.dy[i] : p.dy[i] * p.slope
            }
        }
    }

    struct BackwardPass {
        var dy: UnsafeMutablePointer<Float>
        var y: UnsafePointer<Float>
        var count: Int
        var slope: Float
    }

    /// Elements per WorkerPool chunk of an elementwise pass: large enough that handing a chunk
    /// to a thread (about a microsecond) is small against its work, small enough that a batch
    /// gives every thread several chunks. Chunks of a pure elementwise pass never change its result.
    public static let elementsPerChunk = 16_384

    /// Whole rows per chunk for a row-wise pass over rows of `width` values.
    @inline(__always)
    public static func rowsPerChunk(width: Int) -> Int { max(1, elementsPerChunk / max(width, 1)) }
}
