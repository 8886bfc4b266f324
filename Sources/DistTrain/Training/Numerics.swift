import DistTrainIO
import Models
/// Whole-buffer checks over the flat buffers, written to vectorize.
public enum Numerics {
    /// True when no element is NaN or infinite: x * 0 is 0 for finite x and NaN otherwise,
    /// so one SIMD sum answers for the whole buffer.
    public static func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) * 0
            i += 8
        }
        var tail: Float = 0
        while i < count { tail += p[i] * 0; i += 1 }
        return (acc.sum() + tail) == 0
    }

    /// Sum of the squares, in float32 over blocks of 1024 and float64 across blocks (a NaN or
    /// infinity anywhere makes it non-finite). The same buffer gives the same bits on every rank.
    public static func sumOfSquares(_ p: UnsafePointer<Float>, count: Int) -> Double {
        var total = 0.0
        for block in 0..<blocks(count) { total += Double(blockSumOfSquares(p, count: count, block: block)) }
        return total
    }

    /// Floats per block of `sumOfSquares`.
    static let block = 1024

    /// The blocks of `sumOfSquares` over `count` floats (the size of `blockSums` below).
    public static func blocks(_ count: Int) -> Int { (count + block - 1) / block }

    /// One block's float32 sum of squares: eight lanes, then the lanes and the tail.
    @inline(__always)
    static func blockSumOfSquares(_ p: UnsafePointer<Float>, count: Int, block b: Int) -> Float {
        var i = b * block
        let end = min(i + block, count)
        var acc = SIMD8<Float>(repeating: 0)
        while i + 8 <= end {
            let x = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            acc += x * x
            i += 8
        }
        var tail: Float = 0
        while i < end { tail += p[i] * p[i]; i += 1 }
        return acc.sum() + tail
    }

    /// `sumOfSquares` on the worker pool, with the same bits for any thread count: the blocks'
    /// float32 sums are computed in parallel into `blockSums` (`blocks(count)` floats, allocated
    /// up front), then added in float64 in order on this thread, exactly as the serial loop does.
    /// The gradient norm is taken at every step; serially it left the rank's other threads idle.
    public static func sumOfSquares(_ p: UnsafePointer<Float>, count: Int, blockSums: UnsafeMutablePointer<Float>) -> Double {
        var pass = SquaresPass(values: p, count: count, sums: blockSums)
        let n = blocks(count)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: n, size: blocksPerChunk), &pass) { raw, chunk in
            let pass = raw.assumingMemoryBound(to: SquaresPass.self).pointee
            for b in WorkerPool.range(chunk, count: Numerics.blocks(pass.count), size: Numerics.blocksPerChunk) {
                pass.sums[b] = Numerics.blockSumOfSquares(pass.values, count: pass.count, block: b)
            }
        }
        var total = 0.0
        for b in 0..<n { total += Double(blockSums[b]) }
        return total
    }

    /// Blocks per WorkerPool chunk of the pooled sum (32 x 1024 floats).
    static let blocksPerChunk = 32

    struct SquaresPass {
        var values: UnsafePointer<Float>
        var count: Int
        var sums: UnsafeMutablePointer<Float>
    }

    /// PyTorch's clip_grad_norm_: scales by maxNorm / (norm + 1e-6) when that is below 1.
    public static func clip(_ p: UnsafeMutablePointer<Float>, count: Int, norm: Double, maxNorm: Double) {
        let coefficient = maxNorm / (norm + 1e-6)
        guard coefficient < 1 else { return }
        let c = Float(coefficient)
        let v = SIMD8<Float>(repeating: c)
        var i = 0
        while i + 8 <= count {
            let x = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: x * v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { p[i] *= c; i += 1 }
    }

    /// A 64-bit checksum of the exact bit patterns: equal buffers give equal sums, and any
    /// single changed bit changes it.
    public static func checksum(_ p: UnsafePointer<Float>, count: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        UnsafeRawPointer(p).withMemoryRebound(to: UInt32.self, capacity: count) { u in
            for i in 0..<count {
                h = (h ^ UInt64(u[i])) &* 0x0000_0100_0000_01B3
            }
        }
        return h
    }
}
