/// Inverted dropout: in training each element is kept with probability 1 - p and scaled by
/// 1 / (1 - p), so eval (identity) needs no rescaling.
///
/// The mask is counter-based noise keyed by (seed, step) (the context's noiseKey), this
/// layer's noise index, the row's sample id and the element index: a sample gets the same mask
/// whichever rank or row slot it lands in, so results do not depend on the rank count and
/// resume needs no generator state. The forward pass stores the mask (0 or 1 / (1 - p)) in
/// scratch for backward.
public final class Dropout: Layer {
    public let name: String
    public let inputShape: TensorShape
    public let p: Float
    /// Distinguishes this layer's masks from other Dropout layers' in the same step.
    public let noiseIndex: Int
    public var outputShape: TensorShape { inputShape }

    /// Stream label mixed into the (seed, step) key for dropout masks.
    public static let noiseStream: UInt64 = 0xD0D0

    public init(shape: TensorShape, p: Float, name: String, builder: inout LayerBuilder) {
        precondition(p >= 0 && p < 1, "\(name): dropout p must be in [0, 1), got \(p)")
        inputShape = shape; self.p = p; self.name = name
        noiseIndex = builder.noiseLayers
        builder.noiseLayers += 1
    }

    // scratch: mask [capacity, count] floats, 0 or 1 / (1 - p)
    public func scratchBytes(capacity: Int) -> Int { capacity * inputShape.count * 4 }

    /// The mask value of element `j` of the sample `id`: 0 with probability p, else 1/(1-p).
    @inline(__always)
    public static func maskRowKey(noiseKey: UInt64, layer: Int, id: Int32) -> UInt64 {
        let layerKey = SplitMix64.mix(noiseKey &+ UInt64(layer) &* 0x9E37_79B9_7F4A_7C15)
        return SplitMix64.mix(layerKey &+ UInt64(UInt32(bitPattern: id)) &* 0xD1B5_4A32_D192_ED03)
    }

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, _ c: LayerContext) {
        let n = inputShape.count
        if c.mode == .eval || p == 0 {
            y.update(from: x, count: rows * n)
            if c.mode == .training { c.scratch.bindMemory(to: Float.self, capacity: rows * n).update(repeating: 1, count: rows * n) }
            return
        }
        let mask = c.scratch.bindMemory(to: Float.self, capacity: rows * n)
        // Keep when the top 24 bits of the element's hash are at least p * 2^24.
        let threshold = UInt64((Double(p) * 16_777_216).rounded())
        let keep = 1 / (1 - p)
        for r in 0..<rows {
            let rowKey = Dropout.maskRowKey(noiseKey: c.noiseKey, layer: noiseIndex, id: c.ids[r])
            let m = mask + r * n, xr = x + r * n, yr = y + r * n
            for j in 0..<n {
                let u = SplitMix64.mix(rowKey &+ UInt64(j)) >> 40
                let v: Float = u >= threshold ? keep : 0
                m[j] = v
                yr[j] = xr[j] * v
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>?, rows: Int, _ c: LayerContext) {
        guard let dx else { return }
        let n = rows * inputShape.count
        let mask = c.scratch.bindMemory(to: Float.self, capacity: n)
        for i in 0..<n { dx[i] = dy[i] * mask[i] }
    }
}
