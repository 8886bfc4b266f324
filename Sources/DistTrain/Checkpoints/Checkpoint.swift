import DistTrainIO
import Models
#if canImport(Glibc)
import Glibc
#endif

/// Checkpoint directories: `model.safetensors`, `optimizer.safetensors`, `trainer.json`.
/// Each file is written atomically and the directory is renamed into place last, so a crash
/// never leaves a checkpoint that looks complete but is not.
public enum Checkpoint {
    /// Writes the model tensors (PyTorch names, [out, in] weights) with the architecture in the metadata.
    public static func writeModel(_ model: VAE, params: UnsafePointer<Float>, to path: String, extra: [(String, String)] = []) throws {
        let entries = model.layout.exported.map {
            SafeTensorsEntry(name: $0.name, shape: $0.shape, values: UnsafeBufferPointer(start: params + $0.offset, count: $0.count))
        }
        try SafeTensors.write(path: path, tensors: entries, metadata: [
            ("format", ModelMetadata.format),
            ("config", ModelMetadata.json(model.architecture).serialized),
        ] + extra)
    }

    /// Reads model tensors into `params` after checking the names and shapes match `model`.
    public static func readModel(_ model: VAE, into params: UnsafeMutablePointer<Float>, from path: String) throws {
        let file = try SafeTensors.read(path: path)
        for slot in model.layout.exported {
            guard let shape = file.shape(slot.name) else {
                throw CheckpointError.architectureMismatch(path: path, detail: "tensor \"\(slot.name)\" is missing")
            }
            guard shape == slot.shape else {
                throw CheckpointError.architectureMismatch(path: path, detail: "tensor \"\(slot.name)\" has shape \(shape), the model needs \(slot.shape)")
            }
            try file.copy(slot.name, into: UnsafeMutableBufferPointer(start: params + slot.offset, count: slot.count))
        }
        if let extra = file.names.first(where: { model.layout.slot(named: $0) == nil }) {
            throw CheckpointError.architectureMismatch(path: path, detail: "unexpected tensor \"\(extra)\"")
        }
    }

    /// Adam moments under `exp_avg.<name>` / `exp_avg_sq.<name>` (PyTorch's state names), step in the metadata.
    public static func writeOptimizer(_ model: VAE, adam: Adam, to path: String) throws {
        var entries: [SafeTensorsEntry] = []
        for (prefix, buffer) in [("exp_avg.", adam.m), ("exp_avg_sq.", adam.v)] {
            for s in model.layout.exported {
                entries.append(SafeTensorsEntry(name: prefix + s.name, shape: s.shape,
                                                values: UnsafeBufferPointer(start: buffer.base + s.offset, count: s.count)))
            }
        }
        try SafeTensors.write(path: path, tensors: entries, metadata: [
            ("format", "disttrain.adam.v1"), ("step", String(adam.step)),
            ("lr", "\(adam.lr)"), ("beta1", "\(adam.beta1)"), ("beta2", "\(adam.beta2)"), ("eps", "\(adam.eps)"),
        ])
    }

    public static func readOptimizer(_ model: VAE, adam: Adam, from path: String) throws {
        let file = try SafeTensors.read(path: path)
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
