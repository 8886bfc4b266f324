/// One float32 tensor to write: its values are streamed straight from `values`.
public struct SafeTensorsEntry {
    public let name: String
    public let shape: [Int]
    public let values: UnsafeBufferPointer<Float>

    public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// A problem with a safetensors file. Descriptions name the path and the problem.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file cannot even hold the 8-byte header length.
    case tooShort(path: String, fileBytes: Int)
    /// The header length points past the end of the file.
    case headerTooLarge(path: String, headerBytes: UInt64, fileBytes: Int)
    /// The header is not valid UTF-8 JSON.
    case headerNotJSON(path: String, reason: String)
    /// The header is JSON but not an object.
    case headerNotObject(path: String, found: String)
    /// `__metadata__` is not an object of strings, or (when writing) repeats a key.
    case badMetadata(path: String, key: String?, reason: String)
    /// A tensor's header entry is not an object.
    case entryNotObject(path: String, tensor: String, found: String)
    /// A tensor's entry lacks "dtype", "shape" or "data_offsets".
    case missingField(path: String, tensor: String, field: String)
    /// A tensor's field has the wrong type or an impossible value.
    case badField(path: String, tensor: String, field: String, reason: String)
    /// A dtype string safetensors does not define.
    case unknownDtype(path: String, tensor: String, dtype: String)
    /// The data_offsets span a different number of bytes than shape and dtype need.
    case sizeMismatch(path: String, tensor: String, dtype: String, shape: [Int], expectedBytes: Int, actualBytes: Int)
    /// A tensor's bytes lie (partly) beyond the end of the data section.
    case truncated(path: String, tensor: String, begin: Int, end: Int, dataBytes: Int)
    /// Two tensors share bytes.
    case overlap(path: String, tensor: String, other: String)
    /// Bytes of the data section that belong to no tensor (the format forbids holes).
    case gap(path: String, begin: Int, end: Int)
    /// A tensor handed to the writer is invalid (duplicate or reserved name, shape not matching its values).
    case invalidTensor(path: String, tensor: String, reason: String)
    /// No tensor of that name in the file.
    case noSuchTensor(path: String, tensor: String)
    /// The tensor's dtype (an integer or 8-bit float type) cannot be read as Float.
    case unsupportedDtype(path: String, tensor: String, dtype: String)
    /// The destination buffer's size does not match the tensor's element count.
    case destinationSize(path: String, tensor: String, elements: Int, destination: Int)

    public var description: String {
        switch self {
        case let .tooShort(path, size):
            return "\(path): file is \(size) bytes, too short for the 8-byte header length"
        case let .headerTooLarge(path, header, size):
            return "\(path): header length \(header) exceeds the \(max(size - 8, 0)) bytes after the length field"
        case let .headerNotJSON(path, reason):
            return "\(path): header is not valid JSON: \(reason)"
        case let .headerNotObject(path, found):
            return "\(path): header is \(found), expected a JSON object"
        case let .badMetadata(path, key, reason):
            if let key { return "\(path): __metadata__ entry \"\(key)\" \(reason)" }
            return "\(path): __metadata__ \(reason)"
        case let .entryNotObject(path, tensor, found):
            return "\(path): tensor \"\(tensor)\" entry is \(found), expected an object"
        case let .missingField(path, tensor, field):
            return "\(path): tensor \"\(tensor)\" has no \"\(field)\" field"
        case let .badField(path, tensor, field, reason):
            return "\(path): tensor \"\(tensor)\" field \"\(field)\" \(reason)"
        case let .unknownDtype(path, tensor, dtype):
            return "\(path): tensor \"\(tensor)\" has unknown dtype \"\(dtype)\""
        case let .sizeMismatch(path, tensor, dtype, shape, expected, actual):
            return "\(path): tensor \"\(tensor)\" (\(dtype), shape \(shape)) needs \(expected) bytes but its data_offsets span \(actual)"
        case let .truncated(path, tensor, begin, end, dataBytes):
            return "\(path): truncated: tensor \"\(tensor)\" needs bytes \(begin)..\(end) but the data section has \(dataBytes) bytes"
        case let .overlap(path, tensor, other):
            return "\(path): tensors \"\(other)\" and \"\(tensor)\" overlap"
        case let .gap(path, begin, end):
            return "\(path): bytes \(begin)..\(end) of the data section belong to no tensor"
        case let .invalidTensor(path, tensor, reason):
            return "\(path): cannot write tensor \"\(tensor)\": \(reason)"
        case let .noSuchTensor(path, tensor):
            return "\(path): no tensor \"\(tensor)\""
        case let .unsupportedDtype(path, tensor, dtype):
            return "\(path): tensor \"\(tensor)\" has dtype \(dtype), which cannot be read as float"
        case let .destinationSize(path, tensor, elements, destination):
            return "\(path): tensor \"\(tensor)\" has \(elements) elements but the destination holds \(destination)"
        }
    }
}

/// A parsed, validated safetensors file held in memory.
public struct SafeTensorsFile: Sendable {
    struct Tensor: Sendable {
        let dtype: SafeTensors.DType
        let shape: [Int]
        let elements: Int
        let begin: Int  // byte offset into the data section
    }

    /// The path it was read from (errors name it).
    public let path: String
    /// The `__metadata__` strings.
    public let metadata: [String: String]
    /// Tensor names in header order.
    public let names: [String]
    let tensors: [String: Tensor]
    let bytes: [UInt8]  // the whole file
    let dataStart: Int

    /// The shape of tensor `name`, or nil if there is none.
    public func shape(_ name: String) -> [Int]? { tensors[name]?.shape }

    /// Elements of all tensors together.
    public var totalElements: Int { tensors.values.reduce(0) { $0 + $1.elements } }

    /// The dtype string of tensor `name` ("F32", "BF16", ...), or nil if there is none.
    public func dtype(_ name: String) -> String? { tensors[name]?.dtype.rawValue }

    /// The values of tensor `name` converted to Float; nil if there is no such tensor or its
    /// dtype is not F32, F16, BF16 or F64.
    public func floats(_ name: String) -> [Float]? {
        guard let tensor = tensors[name], tensor.dtype.isFloat else { return nil }
        var values = [Float](repeating: 0, count: tensor.elements)
        let copied: Void? = try? values.withUnsafeMutableBufferPointer { try copy(name, into: $0) }
        return copied == nil ? nil : values
    }

    /// Converts tensor `name` to Float into `destination`, which must hold exactly its elements.
    public func copy(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let tensor = tensors[name] else { throw SafeTensorsError.noSuchTensor(path: path, tensor: name) }
        guard tensor.dtype.isFloat else {
            throw SafeTensorsError.unsupportedDtype(path: path, tensor: name, dtype: tensor.dtype.rawValue)
        }
        guard destination.count == tensor.elements else {
            throw SafeTensorsError.destinationSize(path: path, tensor: name, elements: tensor.elements,
                                                   destination: destination.count)
        }
        guard tensor.elements > 0, let out = destination.baseAddress else { return }
        bytes.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + tensor.begin
            switch tensor.dtype {
            case .F32:
                #if _endian(little)
                UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: tensor.elements * 4)
                #else
                for i in 0..<tensor.elements { out[i] = Float(bitPattern: SafeTensors.loadLE(src + 4 * i, as: UInt32.self)) }
                #endif
            case .F64:
                for i in 0..<tensor.elements {
                    out[i] = Float(Double(bitPattern: SafeTensors.loadLE(src + 8 * i, as: UInt64.self)))
                }
            case .F16:
                for i in 0..<tensor.elements { out[i] = SafeTensors.halfToFloat(SafeTensors.loadLE(src + 2 * i, as: UInt16.self)) }
            case .BF16:
                // bfloat16 is the top half of a float32.
                for i in 0..<tensor.elements {
                    out[i] = Float(bitPattern: UInt32(SafeTensors.loadLE(src + 2 * i, as: UInt16.self)) << 16)
                }
            default:
                break  // excluded by isFloat above
            }
        }
    }
}

/// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
/// (padded with spaces so the data starts 8-byte aligned), then the tensors' little-endian bytes.
public enum SafeTensors {
    /// The dtypes safetensors defines; only the float ones can be read as Float.
    enum DType: String, Sendable {
        case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

        var size: Int {
            switch self {
            case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
            case .I16, .U16, .F16, .BF16: return 2
            case .I32, .U32, .F32: return 4
            case .F64, .I64, .U64: return 8
            }
        }

        var isFloat: Bool { [.F32, .F16, .BF16, .F64].contains(self) }
    }

    /// Writes float32 tensors and string metadata to `path` atomically (via `AtomicFile`).
    ///
    /// Tensor data is streamed from each entry's buffer in chunks; nothing is copied whole.
    /// Throws `SafeTensorsError.invalidTensor`/`.badMetadata` for bad input, `FileError` for I/O.
    @discardableResult
    public static func write(path: String, tensors: [SafeTensorsEntry], metadata: [(String, String)]) throws -> WrittenFile {
        var header: [(String, JSON)] = []
        if !metadata.isEmpty {
            var keys = Set<String>()
            for (key, _) in metadata where !keys.insert(key).inserted {
                throw SafeTensorsError.badMetadata(path: path, key: key, reason: "appears twice")
            }
            header.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) })))
        }
        var names = Set<String>()
        var offset = 0
        for tensor in tensors {
            func invalid(_ reason: String) -> SafeTensorsError {
                .invalidTensor(path: path, tensor: tensor.name, reason: reason)
            }
            guard tensor.name != "__metadata__" else { throw invalid("the name is reserved") }
            guard names.insert(tensor.name).inserted else { throw invalid("the name appears twice") }
            guard tensor.shape.allSatisfy({ $0 >= 0 }) else { throw invalid("negative dimension in shape \(tensor.shape)") }
            guard let elements = product(tensor.shape), elements == tensor.values.count else {
                throw invalid("shape \(tensor.shape) does not match \(tensor.values.count) values")
            }
            let end = offset + elements * 4
            header.append((tensor.name, .object([
                ("dtype", "F32"),
                ("shape", .array(tensor.shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(offset)), .number(Double(end))])),
            ])))
            offset = end
        }
        var headerBytes = Array(JSON.object(header).serialized.utf8)
        // Pad so the data section starts 8-byte aligned (readers may map it as typed arrays).
        headerBytes += repeatElement(UInt8(ascii: " "), count: (8 - (8 + headerBytes.count) % 8) % 8)

        return try AtomicFile.write(to: path) { sink in
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try sink.write($0) }
            try sink.write(headerBytes)
            let chunk = 1 << 20  // floats per write
            for tensor in tensors {
                var start = 0
                while start < tensor.values.count {
                    let part = UnsafeBufferPointer(rebasing: tensor.values[start..<min(start + chunk, tensor.values.count)])
                    #if _endian(little)
                    try sink.write(UnsafeRawBufferPointer(part))
                    #else
                    let swapped = part.map { $0.bitPattern.littleEndian }
                    try swapped.withUnsafeBytes { try sink.write($0) }
                    #endif
                    start += part.count
                }
            }
        }
    }

    /// Reads and validates a safetensors file: header structure, dtypes, that every tensor's
    /// offsets match its shape and lie in the data section, and that the tensors tile the data
    /// section exactly. Throws `FileError` for I/O, `SafeTensorsError` for bad contents.
    /// A file larger than `limit` bytes throws `FileError.tooLarge` before it is read.
    public static func read(path: String, limit: Int = Int.max) throws -> SafeTensorsFile {
        let bytes = try AtomicFile.readAll(path: path, limit: limit)
        guard bytes.count >= 8 else { throw SafeTensorsError.tooShort(path: path, fileBytes: bytes.count) }
        let headerLength = bytes.withUnsafeBytes { loadLE($0.baseAddress!, as: UInt64.self) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError.headerTooLarge(path: path, headerBytes: headerLength, fileBytes: bytes.count)
        }
        let dataStart = 8 + Int(headerLength)
        let dataBytes = bytes.count - dataStart
        let json: JSON
        do {
            json = try JSON.parse(bytes: Array(bytes[8..<dataStart]))
        } catch {
            throw SafeTensorsError.headerNotJSON(path: path, reason: "\(error)")
        }
        guard case let .object(entries) = json else {
            throw SafeTensorsError.headerNotObject(path: path, found: json.typeName)
        }

        var metadata: [String: String] = [:]
        var names: [String] = []
        var tensors: [String: SafeTensorsFile.Tensor] = [:]
        var extents: [(name: String, begin: Int, end: Int)] = []
        for (name, entry) in entries {
            if name == "__metadata__" {
                metadata = try parseMetadata(entry, path: path)
                continue
            }
            let (tensor, end) = try parseTensor(name, entry, dataBytes: dataBytes, path: path)
            names.append(name)
            tensors[name] = tensor
            extents.append((name, tensor.begin, end))
        }

        // The tensors must tile the data section: no overlaps, no holes, nothing left over.
        extents.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        var previous = ""
        for extent in extents {
            if extent.begin < cursor { throw SafeTensorsError.overlap(path: path, tensor: extent.name, other: previous) }
            if extent.begin > cursor { throw SafeTensorsError.gap(path: path, begin: cursor, end: extent.begin) }
            cursor = extent.end
            previous = extent.name
        }
        if cursor < dataBytes { throw SafeTensorsError.gap(path: path, begin: cursor, end: dataBytes) }

        return SafeTensorsFile(path: path, metadata: metadata, names: names, tensors: tensors,
                               bytes: bytes, dataStart: dataStart)
    }

    // MARK: - Internals

    private static func parseMetadata(_ entry: JSON, path: String) throws -> [String: String] {
        guard case let .object(pairs) = entry else {
            throw SafeTensorsError.badMetadata(path: path, key: nil, reason: "is \(entry.typeName), expected an object")
        }
        var metadata: [String: String] = [:]
        for (key, value) in pairs {
            // PyTorch's loader accepts only strings here, so a file with anything else is broken.
            guard case let .string(text) = value else {
                throw SafeTensorsError.badMetadata(path: path, key: key, reason: "is \(value.typeName), expected a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    /// Validates one tensor entry; returns it and its end offset.
    private static func parseTensor(_ name: String, _ entry: JSON, dataBytes: Int,
                                    path: String) throws -> (SafeTensorsFile.Tensor, Int) {
        guard case .object = entry else {
            throw SafeTensorsError.entryNotObject(path: path, tensor: name, found: entry.typeName)
        }
        func field(_ key: String) throws -> JSON {
            guard let value = entry[key] else { throw SafeTensorsError.missingField(path: path, tensor: name, field: key) }
            return value
        }
        func bad(_ key: String, _ reason: String) -> SafeTensorsError {
            .badField(path: path, tensor: name, field: key, reason: reason)
        }
        func integers(_ key: String) throws -> [Int] {
            let value = try field(key)
            guard case let .array(items) = value else { throw bad(key, "is \(value.typeName), expected an array") }
            return try items.map { item in
                guard case let .number(n) = item, n >= 0, n == n.rounded(.towardZero), n < 9.0e15 else {
                    throw bad(key, "holds \(item.serialized), expected non-negative integers")
                }
                return Int(n)
            }
        }

        let dtypeValue = try field("dtype")
        guard case let .string(dtypeName) = dtypeValue else {
            throw bad("dtype", "is \(dtypeValue.typeName), expected a string")
        }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDtype(path: path, tensor: name, dtype: dtypeName)
        }
        guard offsets.count == 2, offsets[0] <= offsets[1] else {
            throw bad("data_offsets", "is \(offsets), expected [begin, end] with begin <= end")
        }
        guard let elements = product(shape) else { throw bad("shape", "\(shape) is too large") }
        let (size, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else { throw bad("shape", "\(shape) is too large") }
        let (begin, end) = (offsets[0], offsets[1])
        guard end - begin == size else {
            throw SafeTensorsError.sizeMismatch(path: path, tensor: name, dtype: dtypeName, shape: shape,
                                                expectedBytes: size, actualBytes: end - begin)
        }
        guard end <= dataBytes else {
            throw SafeTensorsError.truncated(path: path, tensor: name, begin: begin, end: end, dataBytes: dataBytes)
        }
        return (SafeTensorsFile.Tensor(dtype: dtype, shape: shape, elements: elements, begin: begin), end)
    }

    /// The product of the dimensions, nil on overflow.
    static func product(_ shape: [Int]) -> Int? {
        var result = 1
        for dim in shape {
            let (next, overflow) = result.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            result = next
        }
        return result
    }

    /// Loads a little-endian integer from a possibly unaligned address.
    static func loadLE<T: FixedWidthInteger>(_ pointer: UnsafeRawPointer, as type: T.Type) -> T {
        T(littleEndian: pointer.loadUnaligned(as: T.self))
    }

    /// IEEE binary16 to binary32, exact (every half is a float).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10 & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa * 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)  // inf / NaN
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}
