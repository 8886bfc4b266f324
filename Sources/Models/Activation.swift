/// Hidden-layer nonlinearity. Both kinds satisfy act(x) > 0 exactly when x > 0, so the
/// backward pass needs only the stored outputs, not the pre-activations.
public enum Activation: Equatable, Sendable {
    case relu
    case leakyReLU(slope: Float)

    /// Slope applied to negative inputs (0 for ReLU).
    public var negativeSlope: Float {
        switch self {
        case .relu: return 0
        case let .leakyReLU(slope): return slope
        }
    }

    /// y = act(y + bias) over a [rows, width] row-major block: the bias add and the
    /// activation share one pass over memory.
    @inline(__always)
    public func biasForward(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, width: Int) {
        let slope = negativeSlope
        for r in 0..<rows {
            let row = y + r * width
            for j in 0..<width {
                let v = row[j] + bias[j]
                row[j] = v > 0 ? v : v * slope
            }
        }
    }

    /// dy *= act'(x), read off the stored outputs y.
    @inline(__always)
    public func backward(_ dy: UnsafeMutablePointer<Float>, outputs y: UnsafePointer<Float>, count: Int) {
        let slope = negativeSlope
        for i in 0..<count {
            dy[i] = y[i] > 0 ? dy[i] : dy[i] * slope
        }
    }
}
