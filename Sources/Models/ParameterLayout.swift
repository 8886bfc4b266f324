/// A named tensor inside a flat buffer: `shape` in row-major order starting at `offset`.
public struct TensorSlot: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// Where every parameter tensor lives in the one contiguous parameter buffer.
///
/// Layers reserve storage with `reserve`; `exported` lists the tensors under their public
/// (PyTorch-style) names, which may be sub-ranges of a stored block: the encoder's mean and
/// log-variance heads are stored as one fused [2*latent, hidden] matrix so that one sgemm
/// computes both, yet export as `encoder.mean.*` and `encoder.logvar.*`.
public struct ParameterLayout: Sendable {
    public private(set) var totalCount = 0
    public private(set) var exported: [TensorSlot] = []

    public init() {}

    /// Reserves `count` floats and returns their offset. Blocks start on 16-float (64-byte)
    /// boundaries so each layer's weights are aligned for SIMD loads.
    public mutating func reserve(_ count: Int) -> Int {
        let offset = (totalCount + 15) / 16 * 16
        totalCount = offset + count
        return offset
    }

    /// Records a public name for a range that was reserved.
    public mutating func export(_ name: String, shape: [Int], offset: Int) {
        precondition(offset + shape.reduce(1, *) <= totalCount)
        exported.append(TensorSlot(name: name, shape: shape, offset: offset))
    }

    public func slot(named name: String) -> TensorSlot? { exported.first { $0.name == name } }
}
