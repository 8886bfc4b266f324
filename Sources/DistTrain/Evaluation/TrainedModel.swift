import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// A trained model read back from a checkpoint: the architecture comes from the file's
/// metadata, so no config is needed.
public final class TrainedModel {
    /// The model.safetensors file that was read.
    public let path: String
    public let model: VAE
    public let params: FloatBuffer
    /// [stateCount] BatchNorm running statistics (empty for models without BatchNorm).
    public let state: FloatBuffer
    /// The safetensors metadata (format, config, epoch, step, training_config).
    public let metadata: [String: String]

    public var architecture: VAEArchitecture { model.architecture }

    /// Forward passes of this model in evaluation mode (BatchNorm's running statistics).
    public var runner: ModelRunner { ModelRunner(model: model, params: params.base, state: state.base) }

    /// Loads `checkpoint`: see `resolve` for the accepted forms.
    public init(checkpoint: String) throws {
        let file = try TrainedModel.resolve(checkpoint)
        // A checkpoint directory's trainer.json records the model file's checksum: check it.
        let dir = TrainedModel.parent(of: file)
        if file.hasSuffix("/model.safetensors"), FileBytes.exists(dir + "/trainer.json"),
           case let .damaged(damaged, problem) = CheckpointIntegrity.verify(directory: dir), damaged == file {
            throw CheckpointError.damaged(path: dir, reason: "\(damaged): \(problem)")
        }
        // Never read more than this rank could hold (a sparse or endless file stops here).
        let available = MemoryBudget.availableBytes(ranksOnHost: 1)
        let header = try SafeTensors.read(path: file, limit: Int(min(available, 0x1p62)))
        let arch = try ModelMetadata.architecture(from: header.metadata, path: file)
        // The metadata's architecture against the tensors the file really holds, then against
        // memory, all before the model is allocated.
        // (MLP form only: a layer stack's BatchNorm state is in the file too; its shapes are
        // checked tensor by tensor in readModel.)
        let expected = MemoryBudget.parameterCount(arch)
        let held = header.totalElements
        guard !MemoryBudget.isMLP(arch) || expected == Double(held) else {
            throw CheckpointError.architectureMismatch(path: file, detail: "its metadata describes a model of \(PlotText.number(expected, decimals: 0)) parameters, but its tensors hold \(held)")
        }
        try MemoryBudget.check(arch, rows: 1000, training: false, ranksOnHost: 1, what: "\(file): model")
        model = VAE(arch)
        params = FloatBuffer(count: model.parameterCount)
        state = FloatBuffer(count: max(model.stateCount, 1))
        model.initializeState(state.base)
        try Checkpoint.readModel(model, into: params.base, state: state.base, from: file)
        path = file
        metadata = header.metadata
    }

    /// The model.safetensors file a checkpoint argument names. Accepted, in this order:
    /// a model.safetensors file; a checkpoint directory holding one; a pointer file such as
    /// RUN/checkpoints/best or RUN/checkpoints/latest (it holds the name of a sibling checkpoint
    /// directory); a checkpoints directory (its `latest`); a run directory (its
    /// checkpoints/latest). Throws `CheckpointError.missing` when none applies.
    public static func resolve(_ path: String) throws -> String {
        func pointed(_ pointer: String) -> String? {
            // A pointer is one short line of text: a device, FIFO or big file is not one (and
            // /dev/zero never ends), nor is a binary file (a model.safetensors whose header
            // length holds NUL bytes).
            guard FileKind.special(pointer) == nil, let bytes = try? FileBytes.read(pointer, limit: 4096), bytes.count <= 4096,
                  !bytes.contains(where: { $0 < 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x20 || $0 == 0x7F }) else { return nil }
            let text = String(decoding: bytes, as: UTF8.self)
            let name = text.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "\r" }).first.map(String.init) ?? ""
            guard !name.isEmpty, !name.contains("/"), !name.contains("\u{FFFD}") else { return nil }
            let dir = parent(of: pointer) + "/" + name
            let file = dir + "/model.safetensors"
            return FileBytes.exists(file) ? file : nil
        }
        if FileBytes.isDirectory(path) {
            if FileBytes.exists(path + "/model.safetensors") { return path + "/model.safetensors" }
            if let f = pointed(path + "/latest") { return f }
            if let f = pointed(path + "/checkpoints/latest") { return f }
            throw CheckpointError.missing(path: path + "/model.safetensors")
        }
        guard FileBytes.exists(path) else { throw CheckpointError.missing(path: path) }
        if let kind = FileKind.special(path) { throw CheckpointError.badState(path: path, reason: "\(kind), not a checkpoint file") }
        if let f = pointed(path) { return f }
        return path
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }
}
