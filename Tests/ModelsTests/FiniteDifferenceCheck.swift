@testable import Models

/// Central finite differences of a scalar objective over every exported parameter of a
/// model, against the analytic gradient: the comparison GradientCheckTests and
/// StackGradientTests both make (each picks its own step `h` and tolerances).
struct FiniteDifferenceCheck {
    /// ||numeric - analytic|| / ||numeric|| over all parameters.
    let relative: Double
    /// ||numeric||^2: zero means the objective did not depend on any parameter.
    let referenceNorm: Double
    /// max |numeric - analytic| / (1e-2 + |numeric|) over single parameters.
    let worst: Double

    /// `params` [parameterCount] is nudged by +-h one entry at a time (and restored);
    /// `grads` [parameterCount] holds the analytic gradient of `objective` at `params`.
    init(model: VAE, params: FloatBuffer, grads: FloatBuffer, h: Float, objective: () -> Double) {
        var diffNorm = 0.0, refNorm = 0.0, worst = 0.0
        for slot in model.layout.exported {
            for k in 0..<slot.count {
                let i = slot.offset + k
                let saved = params.base[i]
                params.base[i] = saved + h
                let up = objective()
                params.base[i] = saved - h
                let down = objective()
                params.base[i] = saved
                let numeric = (up - down) / (2 * Double(h))
                let analytic = Double(grads.base[i])
                diffNorm += (numeric - analytic) * (numeric - analytic)
                refNorm += numeric * numeric
                worst = max(worst, abs(numeric - analytic) / (1e-2 + abs(numeric)))
            }
        }
        relative = (diffNorm / refNorm).squareRoot()
        referenceNorm = refNorm
        self.worst = worst
    }
}
