#if canImport(Glibc)
import Glibc
#endif

/// The Gumbel-softmax temperature schedule (categorical latents):
/// tau = max(tau_min, tau_start * exp(-tau_decay * step)).
public enum Temperature {
    public static func at(step: Int, config: TrainConfig) -> Float {
        let t = config.training
        return Float(max(t.tauMin, t.tauStart * exp(-t.tauDecay * Double(step))))
    }
}
