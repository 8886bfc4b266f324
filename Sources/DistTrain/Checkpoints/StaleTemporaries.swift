import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

extension RunDirectory {
    /// Removes what a killed writer left behind: `AtomicFile`'s `NAME.tmp-<pid>-<hex>` files
    /// (latest, best, metrics.jsonl, config.json, curves.svg, grids, reconstructions, files
    /// inside checkpoints) and `checkpoints/.incomplete-*` directories. Called by rank 0 when
    /// a run starts or resumes, before anything is written; returns the paths removed.
    @discardableResult
    public func removeStaleTemporaries() -> [String] {
        var removed: [String] = []
        for dir in [path, checkpoints, grids, reconstructions] {
            for name in Directories.list(dir) {
                let full = dir + "/" + name
                if RunDirectory.isAtomicTemporary(name) {
                    unlink(full)
                    removed.append(full)
                } else if dir == checkpoints && name.hasPrefix(".incomplete-") {
                    RunDirectory.removeTree(full)
                    removed.append(full)
                } else if dir == checkpoints && name.hasPrefix("step-") {
                    // A checkpoint's own files are written atomically too.
                    for inner in Directories.list(full) where RunDirectory.isAtomicTemporary(inner) {
                        unlink(full + "/" + inner)
                        removed.append(full + "/" + inner)
                    }
                }
            }
        }
        return removed
    }

    /// True for `AtomicFile`'s temporary names: `<name>.tmp-<decimal pid>-<hex>`.
    static func isAtomicTemporary(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, let last = parts.last, last.hasPrefix("tmp-"), !parts.dropLast().joined().isEmpty else { return false }
        let fields = last.dropFirst(4).split(separator: "-", omittingEmptySubsequences: false)
        return fields.count == 2
            && !fields[0].isEmpty && fields[0].allSatisfy { $0.isASCII && $0.isNumber }
            && !fields[1].isEmpty && fields[1].allSatisfy { $0.isASCII && $0.isHexDigit }
    }
}

extension RunDirectory {
    /// On resume: points `best` at the checkpoint the resumed trainer state names as best, when
    /// that checkpoint is in this run directory and `best` says otherwise (a kill between the
    /// `best` and `latest` renames, or a resume from an older checkpoint than `latest`).
    public func restoreBestPointer(state: TrainerState) throws {
        let name = state.bestCheckpoint
        guard !name.isEmpty, !name.contains("/"), pointer("best") != name,
              FileBytes.isDirectory(checkpoints + "/" + name) else { return }
        try setPointer("best", to: name)
    }
}
