import Foundation
import Testing
@testable import DistTrainIO
import IOTestSupport

@Suite struct SafeTensorsTests {
    /// A safetensors file built by hand: length prefix, header text as given, data bytes.
    static func handBuilt(_ header: String, _ data: [UInt8] = []) -> [UInt8] {
        let text = Array(header.utf8)
        var length = UInt64(text.count)
        return withUnsafeBytes(of: &length) { Array($0) } + text + data
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// Writes `bytes` to a temp file and reads it back as safetensors.
    static func read(_ bytes: [UInt8], in dir: IOTestDirectory) throws -> SafeTensorsFile {
        let path = dir.file("t.safetensors")
        try IOTestFiles.write(bytes, to: path)
        return try SafeTensors.read(path: path)
    }

    /// Expects reading `bytes` to fail with exactly `expected` (built from the file's path).
    static func expectError(_ bytes: [UInt8], _ expected: (String) -> SafeTensorsError,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = try IOTestDirectory()
        let path = dir.file("t.safetensors")
        try IOTestFiles.write(bytes, to: path)
        let error = #expect(throws: SafeTensorsError.self, sourceLocation: sourceLocation) {
            try SafeTensors.read(path: path)
        }
        #expect(error == expected(path), sourceLocation: sourceLocation)
    }

    @Test func roundTrip() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("model.safetensors")
        let weight: [Float] = [1, -2.5, 0, -0.0, .infinity, -.greatestFiniteMagnitude]
        let bias: [Float] = [Float(bitPattern: 0x7FC0_1234), .leastNonzeroMagnitude, 3.25, 1e-30, 42]  // NaN with payload
        let scalar: [Float] = [0.125]
        let empty: [Float] = []
        let config = #"{"latent": 16, "layers": [784, 400], "name": "vae \"β\""}"#
        try weight.withUnsafeBufferPointer { w in
            try bias.withUnsafeBufferPointer { b in
                try scalar.withUnsafeBufferPointer { s in
                    try empty.withUnsafeBufferPointer { e in
                        try SafeTensors.write(path: path, tensors: [
                            SafeTensorsEntry(name: "encoder.fc1.weight", shape: [2, 3], values: w),
                            SafeTensorsEntry(name: "encoder.fc1.bias", shape: [5], values: b),
                            SafeTensorsEntry(name: "scale", shape: [], values: s),
                            SafeTensorsEntry(name: "nothing", shape: [0, 4], values: e),
                        ], metadata: [("format", "pt"), ("config", config), ("step", "1200")])
                    }
                }
            }
        }
        let file = try SafeTensors.read(path: path)
        #expect(file.names == ["encoder.fc1.weight", "encoder.fc1.bias", "scale", "nothing"])
        #expect(file.metadata == ["format": "pt", "config": config, "step": "1200"])
        #expect(file.shape("encoder.fc1.weight") == [2, 3])
        #expect(file.shape("encoder.fc1.bias") == [5])
        #expect(file.shape("scale") == [])
        #expect(file.shape("nothing") == [0, 4])
        #expect(file.shape("missing") == nil && file.floats("missing") == nil)
        #expect(file.dtype("scale") == "F32")
        #expect(file.floats("encoder.fc1.weight")?.map(\.bitPattern) == weight.map(\.bitPattern))
        #expect(file.floats("encoder.fc1.bias")?.map(\.bitPattern) == bias.map(\.bitPattern))
        #expect(file.floats("scale") == [0.125])
        #expect(file.floats("nothing") == [])

        var into = [Float](repeating: 0, count: 5)
        try into.withUnsafeMutableBufferPointer { try file.copy("encoder.fc1.bias", into: $0) }
        #expect(into.map(\.bitPattern) == bias.map(\.bitPattern))
        #expect(try dir.listing() == ["model.safetensors"])
    }

    @Test func copyErrors() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("m.safetensors")
        let values: [Float] = [1, 2, 3]
        try values.withUnsafeBufferPointer {
            try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "w", shape: [3], values: $0)], metadata: [])
        }
        let file = try SafeTensors.read(path: path)
        #expect(file.metadata.isEmpty)
        var small = [Float](repeating: 0, count: 2)
        #expect(throws: SafeTensorsError.destinationSize(path: path, tensor: "w", elements: 3, destination: 2)) {
            try small.withUnsafeMutableBufferPointer { try file.copy("w", into: $0) }
        }
        #expect(throws: SafeTensorsError.noSuchTensor(path: path, tensor: "v")) {
            try small.withUnsafeMutableBufferPointer { try file.copy("v", into: $0) }
        }
    }

    @Test func headerAlignmentAndLayout() throws {
        let dir = try IOTestDirectory()
        let values = [Float](repeating: 1, count: 7)
        for nameLength in 1...9 {
            let path = dir.file("a\(nameLength).safetensors")
            try values.withUnsafeBufferPointer {
                try SafeTensors.write(path: path, tensors: [
                    SafeTensorsEntry(name: String(repeating: "x", count: nameLength), shape: [7], values: $0),
                ], metadata: [("k", String(repeating: "v", count: nameLength))])
            }
            let bytes = try IOTestFiles.read(path)
            let n = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
            #expect((8 + n) % 8 == 0)
            #expect(bytes.count == 8 + n + 7 * 4)
            #expect(bytes[8] == UInt8(ascii: "{"))
            #expect(try JSON.parse(bytes: Array(bytes[8..<8 + n]))["__metadata__"] != nil)
        }
    }

    @Test func largeTensorIsWrittenInChunks() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("big.safetensors")
        let count = (1 << 20) + 3
        let values = (0..<count).map { Float($0) }
        try values.withUnsafeBufferPointer {
            try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "big", shape: [count], values: $0)], metadata: [])
        }
        #expect(try SafeTensors.read(path: path).floats("big") == values)
    }

    @Test func handBuiltFileIsRead() throws {
        let dir = try IOTestDirectory()
        let header = """
        {"__metadata__":{"format":"pt"},\
        "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},\
        "h":{"dtype":"F16","shape":[5],"data_offsets":[8,18]},\
        "b":{"dtype":"BF16","shape":[2],"data_offsets":[18,22]},\
        "d":{"dtype":"F64","shape":[1,1],"data_offsets":[22,30]},\
        "i":{"dtype":"I64","shape":[1],"data_offsets":[30,38]}}
        """
        var data: [UInt8] = []
        data += [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // F32 1.5, -2
        for half: UInt16 in [0x3C00, 0xB800, 0x7BFF, 0x0001, 0xFC00] { data += Self.littleEndian(half) }  // 1, -0.5, 65504, 2^-24, -inf
        for bf: UInt16 in [0x4040, 0xBF80] { data += Self.littleEndian(bf) }  // 3, -1
        data += Self.littleEndian((0.1 as Double).bitPattern)  // unaligned on purpose
        data += Self.littleEndian(Int64(7))
        let file = try Self.read(Self.handBuilt(header, data), in: dir)
        #expect(file.names == ["a", "h", "b", "d", "i"])
        #expect(file.metadata == ["format": "pt"])
        #expect(file.floats("a") == [1.5, -2])
        #expect(file.floats("h") == [1, -0.5, 65504, 0x1p-24, -.infinity])
        #expect(file.floats("b") == [3, -1])
        #expect(file.floats("d") == [Float(0.1)] && file.shape("d") == [1, 1])
        #expect(file.dtype("i") == "I64" && file.shape("i") == [1] && file.floats("i") == nil)
        var one: [Float] = [0]
        #expect(throws: SafeTensorsError.unsupportedDtype(path: dir.file("t.safetensors"), tensor: "i", dtype: "I64")) {
            try one.withUnsafeMutableBufferPointer { try file.copy("i", into: $0) }
        }
    }

    @Test func halfPrecisionConversion() {
        #expect(SafeTensors.halfToFloat(0x0000).bitPattern == (0 as Float).bitPattern)
        #expect(SafeTensors.halfToFloat(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(SafeTensors.halfToFloat(0x3555) == 0.333251953125)
        #expect(SafeTensors.halfToFloat(0x03FF) == 0x1.ff8p-15)  // largest subnormal
        #expect(SafeTensors.halfToFloat(0x0400) == 0x1p-14)  // smallest normal
        #expect(SafeTensors.halfToFloat(0x7E00).isNaN)
    }

    // MARK: - Corruption: each produces its own error case

    @Test func tooShort() throws {
        try Self.expectError([1, 2, 3]) { .tooShort(path: $0, fileBytes: 3) }
    }

    @Test func headerLongerThanFile() throws {
        try Self.expectError(Self.littleEndian(UInt64(100)) + Array("{}".utf8)) {
            .headerTooLarge(path: $0, headerBytes: 100, fileBytes: 10)
        }
        try Self.expectError(Self.littleEndian(UInt64.max)) { .headerTooLarge(path: $0, headerBytes: .max, fileBytes: 8) }
    }

    @Test func headerNotJSON() throws {
        let dir = try IOTestDirectory()
        let error = #expect(throws: SafeTensorsError.self) { try Self.read(Self.handBuilt("{nope"), in: dir) }
        guard case .headerNotJSON? = error else {
            Issue.record("expected headerNotJSON, got \(String(describing: error))")
            return
        }
        let invalidUTF8 = Self.littleEndian(UInt64(6)) + [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x7D]
        let utf8Error = #expect(throws: SafeTensorsError.self) { try Self.read(invalidUTF8, in: dir) }
        guard case .headerNotJSON? = utf8Error else {
            Issue.record("expected headerNotJSON, got \(String(describing: utf8Error))")
            return
        }
    }

    @Test func headerNotObject() throws {
        try Self.expectError(Self.handBuilt("[1, 2]")) { .headerNotObject(path: $0, found: "an array") }
    }

    @Test(arguments: ["dtype", "shape", "data_offsets"])
    func missingField(field: String) throws {
        let fields = [("dtype", #""F32""#), ("shape", "[1]"), ("data_offsets", "[0,4]")]
            .filter { $0.0 != field }.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
        try Self.expectError(Self.handBuilt("{\"w\":{\(fields)}}", [0, 0, 0, 0])) {
            .missingField(path: $0, tensor: "w", field: field)
        }
    }

    @Test func badFields() throws {
        try Self.expectError(Self.handBuilt(#"{"w":7}"#)) { .entryNotObject(path: $0, tensor: "w", found: "a number") }
        for (json, field) in [(#"{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, "dtype"),
                              (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "shape"),
                              (#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, "shape"),
                              (#"{"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}"#, "shape"),
                              (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, "data_offsets"),
                              (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, "data_offsets")] {
            let dir = try IOTestDirectory()
            let error = #expect(throws: SafeTensorsError.self) { try Self.read(Self.handBuilt(json, [0, 0, 0, 0]), in: dir) }
            guard case .badField(_, "w", field, _)? = error else {
                Issue.record("\(json): expected badField \(field), got \(String(describing: error))")
                continue
            }
        }
    }

    @Test func unknownDtype() throws {
        try Self.expectError(Self.handBuilt(#"{"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])) {
            .unknownDtype(path: $0, tensor: "w", dtype: "F17")
        }
    }

    @Test func offsetsNotMatchingShape() throws {
        try Self.expectError(Self.handBuilt(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, Array(repeating: 0, count: 8))) {
            .sizeMismatch(path: $0, tensor: "w", dtype: "F32", shape: [3], expectedBytes: 12, actualBytes: 8)
        }
        try Self.expectError(Self.handBuilt(#"{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}}"#, Array(repeating: 0, count: 16))) {
            .sizeMismatch(path: $0, tensor: "w", dtype: "BF16", shape: [2, 2], expectedBytes: 8, actualBytes: 16)
        }
    }

    @Test func offsetsOutsideData() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"decoder.out.weight":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#
        try Self.expectError(Self.handBuilt(header, Array(repeating: 0, count: 20))) {
            .truncated(path: $0, tensor: "decoder.out.weight", begin: 8, end: 24, dataBytes: 20)
        }
        let example = SafeTensorsError.truncated(path: "run/ckpt/model.safetensors", tensor: "decoder.out.weight",
                                                 begin: 1024, end: 402432, dataBytes: 5000)
        #expect(example.description
                == #"run/ckpt/model.safetensors: truncated: tensor "decoder.out.weight" needs bytes 1024..402432 but the data section has 5000 bytes"#)
    }

    @Test func overlappingTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        try Self.expectError(Self.handBuilt(header, Array(repeating: 0, count: 12))) {
            .overlap(path: $0, tensor: "b", other: "a")
        }
    }

    @Test func gappedTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#
        try Self.expectError(Self.handBuilt(header, Array(repeating: 0, count: 20))) { .gap(path: $0, begin: 8, end: 12) }
        let leading = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        try Self.expectError(Self.handBuilt(leading, Array(repeating: 0, count: 8))) { .gap(path: $0, begin: 0, end: 4) }
        let trailing = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        try Self.expectError(Self.handBuilt(trailing, Array(repeating: 0, count: 9))) { .gap(path: $0, begin: 4, end: 9) }
    }

    @Test func nonStringMetadata() throws {
        try Self.expectError(Self.handBuilt(#"{"__metadata__":{"format":"pt","epoch":3}}"#)) {
            .badMetadata(path: $0, key: "epoch", reason: "is a number, expected a string")
        }
        try Self.expectError(Self.handBuilt(#"{"__metadata__":["pt"]}"#)) {
            .badMetadata(path: $0, key: nil, reason: "is an array, expected an object")
        }
    }

    // MARK: - Writer input checks

    @Test func writerRejectsBadInput() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("bad.safetensors")
        let values: [Float] = [1, 2, 3]
        values.withUnsafeBufferPointer { v in
            #expect(throws: SafeTensorsError.invalidTensor(path: path, tensor: "w", reason: "shape [2, 2] does not match 3 values")) {
                try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "w", shape: [2, 2], values: v)], metadata: [])
            }
            #expect(throws: SafeTensorsError.invalidTensor(path: path, tensor: "w", reason: "the name appears twice")) {
                try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "w", shape: [3], values: v),
                                                            SafeTensorsEntry(name: "w", shape: [3], values: v)], metadata: [])
            }
            #expect(throws: SafeTensorsError.invalidTensor(path: path, tensor: "__metadata__", reason: "the name is reserved")) {
                try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "__metadata__", shape: [3], values: v)], metadata: [])
            }
            #expect(throws: SafeTensorsError.badMetadata(path: path, key: "k", reason: "appears twice")) {
                try SafeTensors.write(path: path, tensors: [], metadata: [("k", "1"), ("k", "2")])
            }
            let missingDir = dir.file("nope/bad.safetensors")
            let error = #expect(throws: FileError.self) {
                try SafeTensors.write(path: missingDir, tensors: [SafeTensorsEntry(name: "w", shape: [3], values: v)], metadata: [])
            }
            #expect(error == .cannotCreate(path: missingDir, reason: "No such file or directory"))
        }
        #expect(try dir.listing() == [])
        let missing = dir.file("missing.safetensors")
        #expect(throws: FileError.notFound(path: missing)) { try SafeTensors.read(path: missing) }
    }

    // MARK: - Interoperability

    /// An independent reader (python3, json and struct only) accepts what we write.
    @Test(.enabled(if: IOTestFiles.hasPython))
    func pythonReadsIt() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("py.safetensors")
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [-0.5]
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "a", shape: [2, 3], values: pa),
                                                            SafeTensorsEntry(name: "b", shape: [1], values: pb)],
                                      metadata: [("format", "pt"), ("config", #"{"x": 1}"#)])
            }
        }
        let script = """
        import json, struct, sys
        data = open(sys.argv[1], 'rb').read()
        n = struct.unpack('<Q', data[:8])[0]
        assert (8 + n) % 8 == 0
        header = json.loads(data[8:8 + n])
        meta = header.pop('__metadata__')
        assert all(isinstance(v, str) for v in meta.values())
        body, end = data[8 + n:], 0
        for name, t in header.items():
            lo, hi = t['data_offsets']
            assert lo == end and t['dtype'] == 'F32'
            end = hi
            values = struct.unpack('<%df' % ((hi - lo) // 4), body[lo:hi])
            print(name, t['shape'], list(values))
        assert end == len(body)
        print(json.loads(meta['config'])['x'], meta['format'])
        """
        let result = try #require(IOTestFiles.run("python3", ["-c", script, path]))
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output == "a [2, 3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\nb [1] [-0.5]\n1 pt\n")
    }

    /// A python3 with the `safetensors` package: $DISTTRAIN_PYTHON (scripts/test.sh points it at
    /// scripts/tools/python-venv.sh's venv), else python3 from PATH.
    static let safetensorsPython = ProcessInfo.processInfo.environment["DISTTRAIN_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"

    /// The real `safetensors` package loads the file too. Without the package this test is skipped,
    /// and scripts/test.sh reports the skip (it does not count as a pass).
    @Test(.enabled(if: IOTestFiles.run(safetensorsPython, ["-c", "import safetensors.numpy"])?.status == 0))
    func safetensorsPackageLoadsIt() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("st.safetensors")
        let a: [Float] = [1, 2, 3, 4]
        try a.withUnsafeBufferPointer {
            try SafeTensors.write(path: path, tensors: [SafeTensorsEntry(name: "a", shape: [2, 2], values: $0)],
                                  metadata: [("format", "pt")])
        }
        let script = """
        import sys
        from safetensors import safe_open
        with safe_open(sys.argv[1], framework='numpy') as f:
            print(f.metadata()['format'], f.get_tensor('a').tolist())
        """
        let result = try #require(IOTestFiles.run(Self.safetensorsPython, ["-c", script, path]))
        #expect(result.output == "pt [[1.0, 2.0], [3.0, 4.0]]\n", "\(result.output)")
    }
}
