import DistTrainIO
import ArgumentParser
import DistTrain
import Models
#if canImport(Glibc)
import Glibc
#endif

/// A `--label` value: one label, or every label.
enum LabelChoice: ExpressibleByArgument, Equatable {
    case one(Int)
    case all

    init?(argument: String) {
        if argument.lowercased() == "all" { self = .all; return }
        guard let v = Int(argument), v >= 0 else { return nil }
        self = .one(v)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A checkpoint command that cannot do what was asked.
enum AnalysisCommandError: Error, CustomStringConvertible {
    case needsLabel(classes: Int)
    case notSquare(pixels: Int)
    case nothingToWrite(command: String, options: String)

    var description: String {
        switch self {
        case let .needsLabel(classes):
            return "the model is conditional: pass --label 0...\(classes - 1) or --label all"
        case let .notSquare(pixels):
            return "the model's images have \(pixels) pixels, not a square number: they cannot be drawn as a grid"
        case let .nothingToWrite(command, options):
            return "\(command): nothing to do: pass \(options)"
        }
    }
}

/// Shared plumbing of the checkpoint commands (generate, style, reconstruct, manifold, eval).
enum AnalysisCLI {
    /// "disttrain: note: ..." on stderr.
    static func note(_ message: String) {
        fputs("disttrain: note: \(message)\n", stderr)
    }

    /// Creates the directory that will hold `path`.
    static func prepareOutput(_ path: String) throws {
        guard let slash = path.lastIndex(of: "/") else { return }
        let dir = String(path[..<slash])
        if !dir.isEmpty { try RunDirectory.makeDirectories(dir) }
    }

    /// Checks `label` against the model's classes.
    static func check(label: Int, _ a: VAEArchitecture) throws {
        guard label < a.classes else { throw AnalysisError.labelOutOfRange(label: label, classes: a.classes) }
    }

    /// An image grid whose cells fit the model's (square) images.
    static func grid(rows: Int, cols: Int, _ a: VAEArchitecture) throws -> ImageGrid {
        let side = Int(Double(a.inputDim).squareRoot().rounded())
        guard side * side == a.inputDim else { throw AnalysisCommandError.notSquare(pixels: a.inputDim) }
        return ImageGrid(rows: rows, cols: cols, cellHeight: side, cellWidth: side)
    }

    /// The path of one label's file: "F.png" gives "F-label3.png".
    static func perLabel(_ path: String, _ label: Int) -> String {
        let slash = path.lastIndex(of: "/")
        if let dot = path.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true, dot != path.startIndex {
            return String(path[..<dot]) + "-label\(label)" + String(path[dot...])
        }
        return path + "-label\(label)"
    }
}
