import Models

/// Counter-based Bernoulli draws for binarizing pixels: pixel j of the sample with global id
/// `id` is 1 when a 24-bit hash of (key, id, j) falls below intensity x 2^24, else 0.
///
/// Like the reparameterization noise (`GaussianNoise`) and dropout masks, a draw is a pure
/// function of (seed, epoch, global sample id, pixel): a sample gets the same binary image on
/// whichever rank or batch slot it lands, so results do not depend on the rank count or the
/// shard, and a resume redraws exactly what the interrupted run drew. No state, no allocation.
public enum BernoulliPixels {
    /// Stream label of the training draws, disjoint from `NoiseStream` (1-3) and `AnalysisNoise` (16-18).
    public static let trainStream: UInt64 = 0xB1_0001

    /// The key of an epoch's training draws, nil when nothing is binarized. Static
    /// binarization always uses epoch 0's draws, so it equals dynamic's first epoch.
    public static func trainKey(_ mode: Binarization, seed: UInt64, epoch: Int) -> UInt64? {
        switch mode {
        case .none: return nil
        case .dynamic: return GaussianNoise.key(seed: seed, stream: trainStream, counter: UInt64(epoch))
        case .static: return GaussianNoise.key(seed: seed, stream: trainStream, counter: 0)
        }
    }

    /// The key of the one fixed binarization of the test set (both binarizing modes), nil for
    /// none. It does not depend on the training seed, so every model is evaluated on the
    /// same binary test images. Not of `GaussianNoise.key`'s form, whose seed and stream add
    /// (seed 1's training key of epoch 0 would be seed 0's key of the next stream).
    public static func testKey(_ mode: Binarization) -> UInt64? {
        mode == .none ? nil : SplitMix64.mix(0x7E57_B1A7_0000_0002)
    }

    /// The per-sample key from an epoch key and the sample's global id.
    @inline(__always)
    public static func rowKey(_ key: UInt64, id: Int) -> UInt64 {
        SplitMix64.mix(key &+ UInt64(UInt32(truncatingIfNeeded: id)) &* 0xD1B5_4A32_D192_ED03)
    }

    /// Pixel `j` of a sample as 0 or 1: P(1) = intensity / 255, compared in integers
    /// (u / 2^24 < s / 255 exactly when 255 u < s 2^24), so 0 stays 0 and 255 stays 1.
    @inline(__always)
    public static func draw(intensity s: UInt8, rowKey: UInt64, pixel j: Int) -> Float {
        let u = SplitMix64.mix(rowKey &+ UInt64(j)) >> 40
        return u &* 255 < UInt64(s) << 24 ? 1 : 0
    }
}
