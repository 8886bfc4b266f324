/// What layers reserve while a model is built: trainable parameters (optimized, allreduced)
/// and non-trainable state (BatchNorm running statistics), in two separate flat buffers so the
/// optimizer and the gradient exchange never see the state.
public struct LayerBuilder: Sendable {
    public var parameters = ParameterLayout()
    public var state = ParameterLayout()
    /// Counts layers that draw noise (Dropout), giving each its own stream.
    public var noiseLayers = 0

    public init() {}
}
