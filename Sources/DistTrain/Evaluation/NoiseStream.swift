import DistTrainIO
import Models

/// Stream labels that keep the noise of training, evaluation and pictures independent.
public enum NoiseStream {
    public static let train: UInt64 = 1
    public static let test: UInt64 = 2
    public static let grid: UInt64 = 3
}
