import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Checkpoint directories: `model.safetensors`, `optimizer.safetensors`, `trainer.json`.
/// Each file is written atomically and the directory is renamed into place last, so a crash
/// never leaves a checkpoint that looks complete but is not.
public enum Checkpoint {
    /// Writes the model tensors (PyTorch names and layouts) with the architecture in the metadata,
    /// then the BatchNorm state (`running_mean`, `running_var`, `num_batches_tracked`, all float32:
    /// PyTorch's `load_state_dict` copies the count into its int64 buffer).
    @discardableResult
    public static func writeModel(_ model: VAE, params: UnsafePointer<Float>, state: UnsafePointer<Float>? = nil,
                                  to path: String, extra: [(String, String)] = []) throws -> WrittenFile {
        var entries = model.layout.exported.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, values: UnsafeBufferPointer(start: params + $0.offset, count: $0.count))
        }
        if let state {
            entries += model.stateLayout.exported.map {
                SafeTensorsEntry(name: $0.name, shape: $0.shape, values: UnsafeBufferPointer(start: state + $0.offset, count: $0.count))
            }
        }
        return try SafeTensors.write(path: path, tensors: entries, metadata: [
            ("format", ModelMetadata.format),
            ("config", ModelMetadata.json(model.architecture).serialized),
        ] + extra)
    }

    /// Reads model tensors into `params` (and the BatchNorm state into `state`, when the model
    /// has any) after checking the names and shapes match `model`.
    public static func readModel(_ model: VAE, into params: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>? = nil,
                                 from path: String) throws {
        let file = try SafeTensors.read(path: path, limit: fileLimit(floats: model.trainableCount + model.stateLayout.totalCount))
        var slots = model.layout.exported.map { ($0, params) }
        if let state { slots += model.stateLayout.exported.map { ($0, state) } }
        for (slot, base) in slots {
            guard let shape = file.shape(slot.name) else {
                throw CheckpointError.architectureMismatch(path: path, detail: "tensor \"\(slot.name)\" is missing")
            }
            guard shape == slot.shape else {
                throw CheckpointError.architectureMismatch(path: path, detail: "tensor \"\(slot.name)\" has shape \(shape), the model needs \(slot.shape)")
            }
            try file.copy(slot.name, into: UnsafeMutableBufferPointer(start: base + slot.offset, count: slot.count))
        }
        if let extra = file.names.first(where: { model.layout.slot(named: $0) == nil && model.stateLayout.slot(named: $0) == nil }) {
            throw CheckpointError.architectureMismatch(path: path, detail: "unexpected tensor \"\(extra)\"")
        }
    }

    /// The most bytes a checkpoint file of `floats` values can need (float64 tensors and a
    /// generous header): a larger file (a sparse or endless one) is refused before it is read.
    static func fileLimit(floats: Int) -> Int { floats * 8 + (64 << 20) }

    /// Adam moments under `exp_avg.<name>` / `exp_avg_sq.<name>` (PyTorch's state names), step in the metadata.
    @discardableResult
    public static func writeOptimizer(_ model: VAE, adam: Adam, to path: String) throws -> WrittenFile {
        var entries: [SafeTensorsEntry] = []
        for (prefix, buffer) in [("exp_avg.", adam.m), ("exp_avg_sq.", adam.v)] {
            for s in model.layout.exported {
                entries.append(SafeTensorsEntry(name: prefix + s.name, shape: s.shape,
                                                values: UnsafeBufferPointer(start: buffer.base + s.offset, count: s.count)))
            }
        }
        return try SafeTensors.write(path: path, tensors: entries, metadata: [
            ("format", "disttrain.adam.v1"), ("step", String(adam.step)),
            ("lr", "\(adam.lr)"), ("beta1", "\(adam.beta1)"), ("beta2", "\(adam.beta2)"), ("eps", "\(adam.eps)"),
        ])
    }

    public static func readOptimizer(_ model: VAE, adam: Adam, from path: String) throws {
        let file = try SafeTensors.read(path: path, limit: fileLimit(floats: 2 * model.trainableCount))
        guard file.metadata["format"] == "disttrain.adam.v1", let step = file.metadata["step"].flatMap(Int.init), step >= 0 else {
            throw CheckpointError.badState(path: path, reason: "not a disttrain optimizer state")
        }
        for (prefix, buffer) in [("exp_avg.", adam.m), ("exp_avg_sq.", adam.v)] {
            for s in model.layout.exported {
                guard file.shape(prefix + s.name) == s.shape else {
                    throw CheckpointError.architectureMismatch(path: path, detail: "optimizer tensor \"\(prefix + s.name)\" missing or of another shape")
                }
                try file.copy(prefix + s.name, into: UnsafeMutableBufferPointer(start: buffer.base + s.offset, count: s.count))
            }
        }
        adam.step = step
    }
}
