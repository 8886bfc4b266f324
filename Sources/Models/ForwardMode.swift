/// Training or evaluation behaviour of the layers that differ between the two
/// (BatchNorm: batch statistics vs running statistics; Dropout: masks vs identity).
public enum ForwardMode: Sendable, Equatable {
    case training
    case eval
}
