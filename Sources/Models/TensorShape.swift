/// The shape of one row (one sample) of an activation: C channels of H x W, stored NCHW, so a
/// batch is [B, C, H, W] row-major. A flat vector of n features is (n, 1, 1).
public struct TensorShape: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(_ channels: Int, _ height: Int, _ width: Int) {
        precondition(channels >= 1 && height >= 1 && width >= 1, "shape dimensions must be at least 1, got \(channels)x\(height)x\(width)")
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// A flat vector of `n` features.
    public static func flat(_ n: Int) -> TensorShape { TensorShape(n, 1, 1) }

    /// Floats per row.
    public var count: Int { channels * height * width }
    /// H * W: the spatial size of one channel plane.
    public var spatial: Int { height * width }
    /// A vector of features (no spatial extent): what Linear layers and the label join expect.
    public var isFlat: Bool { height == 1 && width == 1 }

    public var description: String { isFlat ? "[\(channels)]" : "[\(channels), \(height), \(width)]" }
}
