import CVectorMath
import Models

/// Adam (Kingma & Ba) with PyTorch's update rule, as one loop over the flat buffers.
///
/// State is two FloatBuffers (first and second moments) and the step count: exactly what a
/// checkpoint saves, so a resumed run continues bitwise.
public final class Adam {
    public var lr: Float
    public let beta1: Float
    public let beta2: Float
    public let eps: Float
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Number of updates taken so far.
    public var step = 0
    /// AdamW's decoupled weight decay: each update first multiplies the parameters by
    /// 1 - lr * weightDecay (PyTorch's AdamW). 0 is plain Adam: the factor is exactly 1.
    public var weightDecay: Float = 0

    public init(count: Int, lr: Float, beta1: Float, beta2: Float, eps: Float) {
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        m = FloatBuffer(count: count)
        v = FloatBuffer(count: count)
    }

    /// One update of `params` from `grads` (both `count` floats).
    public func update(_ params: UnsafeMutablePointer<Float>, _ grads: UnsafePointer<Float>, count: Int) {
        step += 1
        // Bias corrections in float64, as PyTorch computes them, then rounded once.
        let c1 = 1 - pow(Double(beta1), Double(step))
        let c2 = 1 - pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / c1)
        let rootC2 = Float(c2.squareRoot())
        let decay: Float = 1 - lr * weightDecay
        // Chunks of a fixed multiple of 8 over the WorkerPool: every element sees the same
        // operations as in one loop (the vector body, and the scalar tail only at the very end).
        var pass = UpdatePass(params: params, grads: grads, m: m.base, v: v.base, count: count, b1: beta1, b2: beta2, e: eps,
                              stepSize: stepSize, rootC2: rootC2, decay: decay)
        WorkerPool.shared.run(chunks: WorkerPool.chunks(count: count, size: Adam.chunkSize), &pass) { raw, chunk in
            let p = raw.assumingMemoryBound(to: UpdatePass.self).pointee
            let r = WorkerPool.range(chunk, count: p.count, size: Adam.chunkSize)
            Adam.update(p.params + r.lowerBound, p.grads + r.lowerBound, p.m + r.lowerBound, p.v + r.lowerBound,
                        count: r.count, b1: p.b1, b2: p.b2, e: p.e, stepSize: p.stepSize, rootC2: p.rootC2, decay: p.decay)
        }
    }

    /// One update's arguments, for the WorkerPool.
    struct UpdatePass {
        var params: UnsafeMutablePointer<Float>
        var grads: UnsafePointer<Float>
        var m: UnsafeMutablePointer<Float>
        var v: UnsafeMutablePointer<Float>
        var count: Int
        var b1, b2, e, stepSize, rootC2, decay: Float
    }

    /// Floats per WorkerPool chunk of the update (a multiple of 8).
    static let chunkSize = 32_768

    /// The update of `count` consecutive elements, on the calling thread.
    @inline(__always)
    static func update(_ params: UnsafeMutablePointer<Float>, _ grads: UnsafePointer<Float>, _ mp: UnsafeMutablePointer<Float>,
                       _ vp: UnsafeMutablePointer<Float>, count: Int, b1: Float, b2: Float, e: Float,
                       stepSize: Float, rootC2: Float, decay: Float) {
        // Eight lanes at a time with explicit SIMD: the compiler does not vectorize the scalar
        // form (it cannot rule out aliasing between the four buffers). dt_sqrt8 is one vector
        // instruction; SIMD8.squareRoot() would be eight scalar sqrtf calls.
        typealias V = SIMD8<Float>
        let vb1 = V(repeating: b1), vb2 = V(repeating: b2), one = V(repeating: 1)
        let vStep = V(repeating: stepSize), vRoot = V(repeating: 1 / rootC2), vEps = V(repeating: e)
        let vDecay = V(repeating: decay)
        var i = 0
        while i + 8 <= count {
            let g = UnsafeRawPointer(grads + i).loadUnaligned(as: V.self)
            let mi = vb1 * UnsafeRawPointer(mp + i).loadUnaligned(as: V.self) + (one - vb1) * g
            let vi = vb2 * UnsafeRawPointer(vp + i).loadUnaligned(as: V.self) + (one - vb2) * g * g
            let p = UnsafeRawPointer(params + i).loadUnaligned(as: V.self) * vDecay
            UnsafeMutableRawPointer(mp + i).storeBytes(of: mi, as: V.self)
            UnsafeMutableRawPointer(vp + i).storeBytes(of: vi, as: V.self)
            UnsafeMutableRawPointer(params + i).storeBytes(of: p - vStep * mi / (dt_sqrt8(vi) * vRoot + vEps), as: V.self)
            i += 8
        }
        while i < count {
            let g = grads[i]
            let mi = b1 * mp[i] + (1 - b1) * g
            let vi = b2 * vp[i] + (1 - b2) * g * g
            mp[i] = mi
            vp[i] = vi
            params[i] = params[i] * decay - stepSize * mi / (vi.squareRoot() * (1 / rootC2) + e)
            i += 1
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
