/// Everything a layer's forward or backward needs besides its input and output: the flat
/// buffers, the mode, the cross-rank reducer, per-row sample ids and labels (noise keys and
/// the label join), and its own preallocated scratch. A plain struct of pointers, so building
/// one per pass allocates nothing.
public struct LayerContext {
    /// Flat parameter buffer.
    public var params: UnsafePointer<Float>
    /// Flat gradient buffer (backward only).
    public var grads: UnsafeMutablePointer<Float>?
    /// Flat non-trainable state buffer (BatchNorm running statistics); needed in eval mode
    /// and for running-statistics updates.
    public var state: UnsafeMutablePointer<Float>?
    public var mode: ForwardMode
    /// Training forward passes of a real step update running statistics; gradient checks and
    /// the training-mode objective do not.
    public var updatesRunningStatistics: Bool
    /// Add parameter gradients to `grads` instead of overwriting them.
    public var accumulate: Bool
    public var reducer: (any BatchStatisticsReducer)?
    /// [B] dataset ids of the rows (Dropout masks are keyed by them, not by row slot).
    public var ids: UnsafePointer<Int32>
    /// [B] labels of the rows (the label join).
    public var labels: UnsafePointer<Int32>
    /// Key of this step's noise (seed, step); Dropout mixes in its layer index, id and element.
    public var noiseKey: UInt64
    /// Rows the workspace was sized for (layers that work in chunks size them from it).
    public var capacity: Int
    /// This layer's scratch: `scratchBytes(capacity:)` bytes, 64-byte aligned.
    public var scratch: UnsafeMutableRawPointer
    /// Backward: this layer's input came out of a ReLU, whose backward zeroes the input
    /// gradient wherever the input is 0, so only its entries at the input's nonzeros count
    /// (the others may be written as 0). Set per layer by `LayerSequence`.
    public var inputFromReLU = false
    /// A Linear layer may take `SparseInput`'s products for a mostly-zero input batch.
    public var sparseInputs: Bool

    public init(params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>? = nil, state: UnsafeMutablePointer<Float>? = nil,
                mode: ForwardMode, updatesRunningStatistics: Bool = false, accumulate: Bool = false,
                reducer: (any BatchStatisticsReducer)? = nil, ids: UnsafePointer<Int32>, labels: UnsafePointer<Int32>,
                noiseKey: UInt64 = 0, capacity: Int, scratch: UnsafeMutableRawPointer, sparseInputs: Bool = SparseInput.enabled) {
        self.params = params; self.grads = grads; self.state = state; self.mode = mode
        self.updatesRunningStatistics = updatesRunningStatistics; self.accumulate = accumulate; self.reducer = reducer
        self.ids = ids; self.labels = labels; self.noiseKey = noiseKey; self.capacity = capacity; self.scratch = scratch
        self.sparseInputs = sparseInputs
    }
}
