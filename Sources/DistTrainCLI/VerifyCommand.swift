import ArgumentParser
import DistTrain
import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// `disttrain verify`: checks checkpoints against the checksums in their trainer.json.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that checkpoints are intact (file sizes and CRC32C recorded in trainer.json).",
        discussion: """
        --checkpoint takes a checkpoint directory, or a run directory or its checkpoints/ \
        directory (then every checkpoint in it, oldest first). One line per checkpoint: \
        "intact", "no checksums" (written before disttrain recorded them) or "DAMAGED" with the \
        file and the problem. Exit status 0 when none is damaged, 1 when one is, 65 when the \
        path holds no checkpoint. --resume skips damaged checkpoints by itself.
        """
    )

    @Option(name: .long, help: ArgumentHelp("A checkpoint directory, a run directory, or RUN/checkpoints.", valueName: "dir"))
    var checkpoint: String

    func run() throws {
        guard Launch.rank == 0 else { return }
        let path = checkpoint.count > 1 && checkpoint.hasSuffix("/") ? String(checkpoint.dropLast()) : checkpoint
        var dirs: [String]
        if FileBytes.exists(path + "/trainer.json") || FileBytes.exists(path + "/model.safetensors") {
            dirs = [path]
        } else {
            let run = RunDirectory(FileBytes.isDirectory(path + "/checkpoints") ? path : VerifyCommand.parent(path))
            dirs = run.checkpointNames().map { run.checkpoints + "/" + $0 }
        }
        guard FileBytes.isDirectory(path), !dirs.isEmpty else {
            throw CheckpointError.missing(path: path + " (no checkpoint directory, run directory or checkpoints/ directory there)")
        }
        var damaged = 0
        for dir in dirs {
            switch CheckpointIntegrity.verify(directory: dir) {
            case let .intact(files): print("\(dir): intact (\(files.joined(separator: ", ")) match trainer.json)")
            case .unchecked: print("\(dir): no checksums (written by an older disttrain; cannot be verified)")
            case let .damaged(file, problem):
                damaged += 1
                print("\(dir): DAMAGED: \(file): \(problem)")
            }
        }
        if damaged > 0 {
            fputs("disttrain: error: \(damaged) of \(dirs.count) checkpoint\(dirs.count == 1 ? "" : "s") damaged\n", stderr)
            throw ExitCode(ExitStatus.failure.rawValue)
        }
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
