import DistTrainIO
import Models

/// Images and labels do not belong together.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    case emptyDataset(path: String)
    case shapeMismatch(train: String, trainDim: Int, test: String, testDim: Int)

    public var description: String {
        switch self {
        case let .countMismatch(i, ic, l, lc):
            return "\(i) has \(ic) images but \(l) has \(lc) labels"
        case let .emptyDataset(path): return "\(path) holds no records"
        case let .shapeMismatch(train, td, test, sd):
            return "\(train) has images of \(td) pixels but \(test) has \(sd)"
        }
    }
}
