import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Rank 0's view of a run directory:
///
///     RUN/config.json                     the effective config
///     RUN/metrics.jsonl                   one JSON object per epoch
///     RUN/grids/epoch-NNN.png             10x10 generation grid per epoch
///     RUN/checkpoints/step-NNNNNNNN/      model.safetensors, optimizer.safetensors, trainer.json
///     RUN/checkpoints/latest              name of the newest complete checkpoint
///     RUN/checkpoints/best                name of the checkpoint with the lowest test loss
public struct RunDirectory {
    public let path: String

    public init(_ path: String) { self.path = path }

    public var checkpoints: String { path + "/checkpoints" }
    public var grids: String { path + "/grids" }
    public var metrics: String { path + "/metrics.jsonl" }
    public var tensorboard: String { path + "/tb" }
    public var curves: String { path + "/curves.svg" }
    public var reconstructions: String { path + "/reconstructions" }

    /// True when a run has written here before (metrics or a checkpoint).
    public var holdsRun: Bool { FileBytes.exists(metrics) || pointer("latest") != nil }

    /// Creates the directory tree and proves it writable.
    public func prepare() throws {
        for dir in [path, checkpoints, grids, reconstructions] { try RunDirectory.makeDirectories(dir) }
        let probe = path + "/.write-test-\(getpid())"
        guard let f = fopen(probe, "w") else {
            throw RunDirectoryError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        fclose(f)
        unlink(probe)
    }

    /// mkdir -p, failing with a `RunDirectoryError`.
    public static func makeDirectories(_ path: String) throws {
        do { try Directories.make(path) } catch let e as DirectoryCreationError {
            throw RunDirectoryError.cannotCreate(path: e.path, reason: e.reason)
        }
    }

    /// Appends one line to metrics.jsonl (rewritten atomically, so a crash leaves the old file whole).
    public func appendMetrics(_ line: JSON) throws {
        var text = (try? FileBytes.read(metrics)) ?? []
        text.append(contentsOf: Array((line.serialized + "\n").utf8))
        try AtomicFile.write(text, to: metrics)
    }

    /// Drops metrics lines written after `step`, and the partial line of `openEpoch` (1-based)
    /// if that epoch will be finished by the resumed run, so the file matches one clean run.
    public func truncateMetrics(afterStep step: Int, openEpoch: Int? = nil) throws {
        guard let bytes = try? FileBytes.read(metrics) else { return }
        let kept = String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { line in
            guard let j = try? JSON.parse(String(line)), case let .number(s)? = j["step"] else { return false }
            if let e = openEpoch, case let .number(epoch)? = j["epoch"], Int(exactly: epoch) == e { return false }
            return s <= Double(step)
        }
        try AtomicFile.write(Array(kept.map { $0 + "\n" }.joined().utf8), to: metrics)
    }

    /// Checkpoint directory name for a global step.
    public static func checkpointName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The global step of a checkpoint directory name ("step-00000150" -> 150).
    public static func step(ofCheckpoint name: String) -> Int? {
        guard name.hasPrefix("step-") else { return nil }
        return Int(name.dropFirst(5))
    }

    /// The name in a pointer file (`latest`, `best`), or nil.
    public func pointer(_ name: String) -> String? {
        guard FileKind.special(checkpoints + "/" + name) == nil,
              let s = try? FileBytes.readString(checkpoints + "/" + name, limit: 4096) else { return nil }
        let t = s.trimmingCharacters(in: " \n\t")
        return t.isEmpty ? nil : t
    }

    public func setPointer(_ name: String, to target: String) throws {
        try AtomicFile.write(Array((target + "\n").utf8), to: checkpoints + "/" + name)
    }

    /// Writes a complete checkpoint: files into a hidden temporary directory, then one rename
    /// makes it visible, then `best` moves (when `best`), then `latest`. Older step checkpoints
    /// beyond `keep` are removed, except the one `best` names.
    ///
    /// `best` moves before `latest` so that a kill between the two never leaves `latest` on a
    /// checkpoint whose trainer state names a best that the `best` pointer does not: a resume
    /// from an older `latest` puts `best` back (see `TrainingSetup`) and redoes the epoch.
    public func writeCheckpoint(step: Int, keep: Int, best: Bool = false, files: (String) throws -> Void) throws -> String {
        let name = RunDirectory.checkpointName(step: step)
        let final = checkpoints + "/" + name
        let temp = checkpoints + "/.incomplete-" + name
        RunDirectory.removeTree(temp)
        try RunDirectory.makeDirectories(temp)
        do { try files(temp) } catch { RunDirectory.removeTree(temp); throw error }
        RunDirectory.removeTree(final)
        guard rename(temp, final) == 0 else {
            let reason = String(cString: strerror(errno))
            RunDirectory.removeTree(temp)
            throw RunDirectoryError.cannotWrite(path: final, reason: reason)
        }
        RunDirectory.syncDirectory(checkpoints)
        if best { try setPointer("best", to: name) }
        try setPointer("latest", to: name)
        prune(keep: keep)
        return name
    }

    /// Step checkpoints present, oldest first.
    public func checkpointNames() -> [String] {
        Directories.list(checkpoints).filter { $0.hasPrefix("step-") }.sorted()
    }

    func prune(keep: Int) {
        let protected = Set([pointer("best"), pointer("latest")].compactMap { $0 })
        let names = checkpointNames()
        for n in names.dropLast(keep) where !protected.contains(n) {
            RunDirectory.removeTree(checkpoints + "/" + n)
        }
    }

    /// rm -r of a directory of plain files (checkpoint directories hold no subdirectories).
    /// A symbolic link is removed itself, never followed (a `step-*` link to another directory
    /// would otherwise have that directory's files deleted).
    static func removeTree(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
            unlink(path)
            return
        }
        if FileBytes.isDirectory(path) {
            for n in Directories.list(path) { unlink(path + "/" + n) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
