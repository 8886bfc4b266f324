import Models

/// The number format gradients travel in.
public enum WirePrecision: String, CaseIterable, Sendable {
    case fp32
    /// bfloat16 on the wire (half the bytes), float32 arithmetic in every addition.
    case bf16
}
