import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// Checksums of a checkpoint's files, recorded in its trainer.json and verified on load.
///
/// trainer.json is written last and holds, under "files", the byte count and CRC32C of
/// `model.safetensors` and `optimizer.safetensors`, computed over the bytes as they were
/// written. A flipped bit, a truncated file or a missing file is found before anything is
/// loaded. trainer.json checks itself: `self_crc32c` is the CRC32C of the file as it would be
/// written without that field (our serializer is canonical: parsing and writing again gives the
/// same bytes), so a flipped digit in the step or the best loss is found even though the file
/// still parses. Checkpoints written before checksums were recorded load with a warning.
public enum CheckpointIntegrity {
    /// The files every checkpoint holds besides trainer.json.
    public static let dataFiles = ["model.safetensors", "optimizer.safetensors"]

    /// What a look at one checkpoint directory found.
    public enum Verdict: Equatable, Sendable {
        /// Every recorded file is present with its recorded size and CRC32C.
        case intact(files: [String])
        /// trainer.json is readable but records no checksums (an older checkpoint).
        case unchecked
        /// `file` is missing, truncated, corrupted or unreadable.
        case damaged(file: String, problem: String)

        public var isUsable: Bool {
            if case .damaged = self { return false }
            return true
        }
    }

    /// {"model.safetensors": {"bytes": N, "crc32c": "1a2b3c4d"}, ...} from what `AtomicFile.write`
    /// reported while writing the files (no second pass over 16 MB at every save). Every data
    /// file must be there.
    public static func record(_ written: [String: WrittenFile]) throws -> JSON {
        .object(try dataFiles.map { name in
            guard let file = written[name] else { throw FileError.notFound(path: name) }
            return (name, .object([
                ("bytes", .number(Double(file.bytes))),
                ("crc32c", .string(hex(file.crc32c))),
            ]))
        })
    }

    /// The field of trainer.json that holds the file's own checksum.
    public static let selfChecksumKey = "self_crc32c"

    /// trainer.json's bytes: `state` (with its "files" record) plus its own checksum.
    public static func sealed(_ state: JSON) -> [UInt8] {
        let body = state.removing(selfChecksumKey)
        let crc = CRC32C.checksum(Array(body.pretty.utf8))
        return Array(body.adding(selfChecksumKey, .string(hex(crc))).pretty.utf8)
    }

    /// Checks every file trainer.json records.
    public static func verify(directory: String) -> Verdict {
        let statePath = directory + "/trainer.json"
        guard FileBytes.exists(statePath) else { return .damaged(file: statePath, problem: "missing") }
        guard let text = try? FileBytes.read(statePath) else { return .damaged(file: statePath, problem: "unreadable") }
        guard let json = try? JSON.parse(bytes: text) else {
            return .damaged(file: statePath, problem: "not valid JSON (\(text.count) bytes; truncated or corrupted)")
        }
        if let recorded = json[selfChecksumKey] {
            let actual = hex(CRC32C.checksum(Array(json.removing(selfChecksumKey).pretty.utf8)))
            guard case let .string(crc) = recorded, crc == actual else {
                return .damaged(file: statePath, problem: "corrupted: CRC32C of its fields \(actual), it records \(recorded.serialized)")
            }
        }
        do { _ = try TrainerState(json: json, path: directory) } catch {
            return .damaged(file: statePath, problem: "\(error)")
        }
        guard case let .object(files)? = json["files"] else {
            for name in dataFiles where !FileBytes.exists(directory + "/" + name) {
                return .damaged(file: directory + "/" + name, problem: "missing")
            }
            return .unchecked
        }
        var checked: [String] = []
        for (name, entry) in files {
            let path = directory + "/" + name
            guard case let .number(size)? = entry["bytes"], case let .string(crc)? = entry["crc32c"] else {
                return .damaged(file: statePath, problem: "its checksum entry for \(name) is malformed")
            }
            guard FileBytes.exists(path) else { return .damaged(file: path, problem: "missing") }
            guard let bytes = try? FileBytes.read(path) else { return .damaged(file: path, problem: "unreadable") }
            if bytes.count != Int(size) {
                let how = bytes.count < Int(size) ? "truncated" : "too long"
                return .damaged(file: path, problem: "\(how): \(bytes.count) bytes, trainer.json records \(Int(size))")
            }
            let actual = hex(CRC32C.checksum(bytes))
            if actual != crc {
                return .damaged(file: path, problem: "corrupted: CRC32C \(actual), trainer.json records \(crc)")
            }
            checked.append(name)
        }
        for name in dataFiles where !checked.contains(name) {
            return .damaged(file: statePath, problem: "records no checksum for \(name)")
        }
        return .intact(files: checked)
    }

    static func hex(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

extension JSON {
    /// This object with one more field (replacing one of the same name).
    func adding(_ key: String, _ value: JSON) -> JSON {
        guard case var .object(pairs) = self else { return self }
        pairs.removeAll { $0.0 == key }
        pairs.append((key, value))
        return .object(pairs)
    }

    /// This object without the field `key`.
    func removing(_ key: String) -> JSON {
        guard case var .object(pairs) = self else { return self }
        pairs.removeAll { $0.0 == key }
        return .object(pairs)
    }
}
