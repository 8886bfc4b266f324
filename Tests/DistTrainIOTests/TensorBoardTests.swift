import Foundation
import Testing
@testable import DistTrainIO
import IOTestSupport

/// A minimal reader for what `TensorBoardWriter` writes: TFRecord framing (with CRC checks)
/// and a generic protocol buffer field decoder, written independently of the writer's encoder.
enum EventFileReader {
    struct Field {
        let number: Int
        let wire: Int
        let varint: UInt64       // wire 0, and the raw bits of wire 1 and 5
        let payload: [UInt8]     // wire 2
    }

    enum ReadError: Error, CustomStringConvertible {
        case truncated(offset: Int)
        case badLengthCRC(offset: Int)
        case badDataCRC(offset: Int)
        case badProto(String)

        var description: String {
            switch self {
            case let .truncated(offset): return "record at byte \(offset) is cut short"
            case let .badLengthCRC(offset): return "record at byte \(offset): length CRC mismatch"
            case let .badDataCRC(offset): return "record at byte \(offset): data CRC mismatch"
            case let .badProto(why): return "bad protobuf: \(why)"
            }
        }
    }

    static func le<T: FixedWidthInteger>(_ bytes: [UInt8], _ at: Int, as: T.Type) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(bytes[at + i]) << (8 * i) }
        return value
    }

    /// The data of every record, checking both masked CRCs.
    static func records(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        var pos = 0
        while pos < bytes.count {
            guard pos + 12 <= bytes.count else { throw ReadError.truncated(offset: pos) }
            let length = Int(le(bytes, pos, as: UInt64.self))
            let lengthCRC = le(bytes, pos + 8, as: UInt32.self)
            guard CRC32C.unmask(lengthCRC) == CRC32C.checksum(bytes[pos..<pos + 8]) else {
                throw ReadError.badLengthCRC(offset: pos)
            }
            guard pos + 16 + length <= bytes.count else { throw ReadError.truncated(offset: pos) }
            let data = Array(bytes[pos + 12..<pos + 12 + length])
            guard le(bytes, pos + 12 + length, as: UInt32.self) == CRC32C.mask(CRC32C.checksum(data)) else {
                throw ReadError.badDataCRC(offset: pos)
            }
            out.append(data)
            pos += 16 + length
        }
        return out
    }

    static func readVarint(_ bytes: [UInt8], _ pos: inout Int) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < bytes.count, shift < 64 else { throw ReadError.badProto("varint runs off the end") }
            let b = bytes[pos]
            pos += 1
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return value }
            shift += 7
        }
    }

    static func fields(_ bytes: [UInt8]) throws -> [Field] {
        var out: [Field] = []
        var pos = 0
        while pos < bytes.count {
            let key = try readVarint(bytes, &pos)
            let number = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0:
                out.append(Field(number: number, wire: wire, varint: try readVarint(bytes, &pos), payload: []))
            case 1, 5:
                let size = wire == 1 ? 8 : 4
                guard pos + size <= bytes.count else { throw ReadError.badProto("fixed field runs off the end") }
                let raw = size == 8 ? le(bytes, pos, as: UInt64.self) : UInt64(le(bytes, pos, as: UInt32.self))
                out.append(Field(number: number, wire: wire, varint: raw, payload: []))
                pos += size
            case 2:
                let length = Int(try readVarint(bytes, &pos))
                guard pos + length <= bytes.count else { throw ReadError.badProto("bytes field runs off the end") }
                out.append(Field(number: number, wire: wire, varint: 0, payload: Array(bytes[pos..<pos + length])))
                pos += length
            default:
                throw ReadError.badProto("wire type \(wire)")
            }
        }
        return out
    }

    /// One decoded Event, reduced to what the writer can produce.
    struct Event: Equatable {
        var wallTime: Double?
        var step: Int64?
        var fileVersion: String?
        var sessionStatus: Int?
        var tag: String?
        var scalar: Float?
        var image: (height: Int, width: Int, colorspace: Int, png: [UInt8])?

        static func == (a: Event, b: Event) -> Bool {
            a.wallTime == b.wallTime && a.step == b.step && a.fileVersion == b.fileVersion
                && a.sessionStatus == b.sessionStatus && a.tag == b.tag && a.scalar == b.scalar
                && a.image?.height == b.image?.height && a.image?.width == b.image?.width
                && a.image?.colorspace == b.image?.colorspace && a.image?.png == b.image?.png
        }
    }

    static func event(_ data: [UInt8]) throws -> Event {
        var e = Event()
        for f in try fields(data) {
            switch (f.number, f.wire) {
            case (1, 1): e.wallTime = Double(bitPattern: f.varint)
            case (2, 0): e.step = Int64(bitPattern: f.varint)
            case (3, 2): e.fileVersion = String(decoding: f.payload, as: UTF8.self)
            case (7, 2):
                for s in try fields(f.payload) where s.number == 1 && s.wire == 0 { e.sessionStatus = Int(s.varint) }
            case (5, 2):
                let values = try fields(f.payload)
                guard values.count == 1, values[0].number == 1, values[0].wire == 2 else {
                    throw ReadError.badProto("summary does not hold exactly one value")
                }
                for v in try fields(values[0].payload) {
                    switch (v.number, v.wire) {
                    case (1, 2): e.tag = String(decoding: v.payload, as: UTF8.self)
                    case (2, 5): e.scalar = Float(bitPattern: UInt32(v.varint))
                    case (4, 2):
                        var image = (height: 0, width: 0, colorspace: 0, png: [UInt8]())
                        for i in try fields(v.payload) {
                            switch (i.number, i.wire) {
                            case (1, 0): image.height = Int(i.varint)
                            case (2, 0): image.width = Int(i.varint)
                            case (3, 0): image.colorspace = Int(i.varint)
                            case (4, 2): image.png = i.payload
                            default: throw ReadError.badProto("unexpected image field \(i.number)")
                            }
                        }
                        e.image = image
                    default: throw ReadError.badProto("unexpected value field \(v.number)")
                    }
                }
            default: throw ReadError.badProto("unexpected event field \(f.number) (wire \(f.wire))")
            }
        }
        return e
    }

    static func events(path: String) throws -> [Event] {
        try records(IOTestFiles.read(path)).map(event)
    }
}

@Suite struct TensorBoardTests {
    // MARK: CRC-32C

    @Test func crc32cKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // RFC 3720 (iSCSI) appendix B.4 vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x2262_0404)
    }

    @Test func crc32cContinues() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        let whole = CRC32C.checksum(bytes)
        for split in [0, 1, 333, 999, 1000] {
            #expect(CRC32C.checksum(bytes[split...], continuing: CRC32C.checksum(bytes[..<split])) == whole)
        }
    }

    /// The definition, one bit at a time: nothing shared with the tables of the real one.
    static func bitwiseCRC32C(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        }
        return ~c
    }

    @Test("eight bytes at a time agrees with the bit-by-bit definition at every length, alignment and tail")
    func crc32cSlicedMatchesBitwise() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<4099).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for start in 0..<9 {
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4090] {
                let slice = bytes[start..<start + length]
                #expect(CRC32C.checksum(slice) == Self.bitwiseCRC32C(slice), "start \(start) length \(length)")
                let raw = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<start + length])) }
                #expect(raw == Self.bitwiseCRC32C(slice), "raw, start \(start) length \(length)")
            }
        }
    }

    @Test func maskedCRC() {
        // ((crc >> 15) | (crc << 17)) + 0xa282ead8, by hand for crc = 0xE3069283:
        // rotr15 = 0x2507C60D, plus the constant = 0xC78AB0E5.
        #expect(CRC32C.mask(0xE306_9283) == 0xC78A_B0E5)
        #expect(CRC32C.mask(0) == 0xA282_EAD8)
        for crc: UInt32 in [0, 1, 0xE306_9283, 0xFFFF_FFFF, 0x8000_0000, 0x1234_5678] {
            #expect(CRC32C.unmask(CRC32C.mask(crc)) == crc)
        }
    }

    // MARK: Protocol buffers

    @Test func varints() {
        #expect(ProtoWriter.varint(0) == [0x00])
        #expect(ProtoWriter.varint(1) == [0x01])
        #expect(ProtoWriter.varint(127) == [0x7F])
        #expect(ProtoWriter.varint(128) == [0x80, 0x01])
        #expect(ProtoWriter.varint(150) == [0x96, 0x01])  // the protobuf encoding guide's example
        #expect(ProtoWriter.varint(300) == [0xAC, 0x02])
        #expect(ProtoWriter.varint(16_384) == [0x80, 0x80, 0x01])
        #expect(ProtoWriter.varint(UInt64.max) == [UInt8](repeating: 0xFF, count: 9) + [0x01])
        var w = ProtoWriter()
        w.int(2, -1)  // negative int64: ten bytes of two's complement
        #expect(w.bytes == [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    @Test func fieldKeysAndValues() {
        var w = ProtoWriter()
        w.double(1, 1.5)            // key 0x09, little-endian IEEE double
        #expect(w.bytes == [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F])
        w = ProtoWriter()
        w.float(2, 1.0)             // key 0x15, little-endian IEEE float
        #expect(w.bytes == [0x15, 0x00, 0x00, 0x80, 0x3F])
        w = ProtoWriter()
        w.int(2, 300)               // key 0x10
        #expect(w.bytes == [0x10, 0xAC, 0x02])
        w = ProtoWriter()
        w.string(3, "ab")           // key 0x1A, length, bytes
        #expect(w.bytes == [0x1A, 0x02, 0x61, 0x62])
        w = ProtoWriter()
        w.message(5) { $0.message(1) { $0.string(1, "t") } }  // key 0x2A, nested lengths
        #expect(w.bytes == [0x2A, 0x05, 0x0A, 0x03, 0x0A, 0x01, 0x74])
    }

    @Test func scalarEventBytes() {
        // Event{wall_time: 2.0, step: 5, summary{value{tag: "a", simple_value: 1.0}}}, by hand.
        let bytes = TensorBoardEvent.scalar(tag: "a", value: 1, step: 5, wallTime: 2)
        let expected: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x10, 0x05,
                                 0x2A, 0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0x00, 0x00, 0x80, 0x3F]
        #expect(bytes == expected)
    }

    // MARK: Record framing

    @Test func recordFraming() throws {
        let data = Array("hello, tensorboard".utf8)
        let record = TFRecord.frame(data)
        #expect(record.count == data.count + 16)
        #expect(Array(record[0..<8]) == [UInt8(data.count), 0, 0, 0, 0, 0, 0, 0])
        #expect(try EventFileReader.records(record + TFRecord.frame([]) + record) == [data, [], data])
        // Any flipped bit is caught.
        for index in [0, 9, 12, 20, record.count - 1] {
            var bad = record
            bad[index] ^= 0x10
            #expect(throws: EventFileReader.ReadError.self) { try EventFileReader.records(bad) }
        }
        #expect(throws: EventFileReader.ReadError.self) { try EventFileReader.records(Array(record.dropLast())) }
    }

    // MARK: Writer

    /// A small PNG (28x28 gray, or RGB).
    static func png(width: Int = 28, height: Int = 28, channels: Int = 1, seed: Int = 0) -> [UInt8] {
        let pixels = (0..<width * height * channels).map { UInt8(truncatingIfNeeded: ($0 * 37 + seed * 11) % 251) }
        return PNG.encode(width: width, height: height, channels: channels, pixels: pixels)
    }

    static func eventFiles(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
    }

    @Test func writesReadableEvents() throws {
        let dir = try IOTestDirectory()
        let logdir = dir.file("run/tb")  // created, parents included
        let writer = try TensorBoardWriter(directory: logdir)
        let name = String(writer.path.split(separator: "/").last!)
        #expect(writer.path == logdir + "/" + name)
        let parts = name.split(separator: ".", maxSplits: 4).map(String.init)
        #expect(parts.count == 5 && parts[0] == "events" && parts[1] == "out" && parts[2] == "tfevents")
        let stamp = Double(parts[3]) ?? 0
        #expect(abs(stamp - Date().timeIntervalSince1970) < 60)
        // The file name ends in this machine's hostname, as gethostname(2) reports it.
        var host = [CChar](repeating: 0, count: 256)
        #expect(gethostname(&host, host.count - 1) == 0)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(!hostName.isEmpty && parts[4] == hostName, "file name \(name), hostname \(hostName)")

        let gray = Self.png(), rgb = Self.png(width: 5, height: 3, channels: 3)
        try writer.scalar("loss/train", 93.720001, step: 1, wallTime: 1_700_000_000.25)
        try writer.scalar("optimizer/lr", 0.001, step: 1)
        try writer.scalar("loss/test", -2.5, step: 1_234_567_890_123)
        try writer.image("grid/generation", png: gray, width: 28, height: 28, channels: 1, step: 2)
        try writer.image("grid/rgb", png: rgb, width: 5, height: 3, channels: 3, step: 3)
        try writer.flush()

        let events = try EventFileReader.events(path: writer.path)
        #expect(events.count == 6)
        #expect(events[0].fileVersion == "brain.Event:2")
        #expect(events[0].step == nil && events[0].tag == nil)
        #expect(abs(events[0].wallTime! - Date().timeIntervalSince1970) < 60)

        #expect(events[1].tag == "loss/train" && events[1].step == 1 && events[1].scalar == Float(93.720001))
        #expect(events[1].wallTime == 1_700_000_000.25)
        #expect(events[2].tag == "optimizer/lr" && events[2].scalar == Float(0.001))
        #expect(events[2].wallTime! >= events[0].wallTime!)
        #expect(events[3].step == 1_234_567_890_123 && events[3].scalar == -2.5)
        #expect(events[4].tag == "grid/generation" && events[4].step == 2)
        #expect(events[4].image?.height == 28 && events[4].image?.width == 28 && events[4].image?.colorspace == 1)
        #expect(events[4].image?.png == gray)
        #expect(events[5].image?.height == 3 && events[5].image?.width == 5 && events[5].image?.colorspace == 3)
        #expect(try PNG.decode(events[5].image!.png).pixels.count == 5 * 3 * 3)

        writer.close()
        writer.close()  // idempotent
        #expect(throws: TensorBoardError.closed(path: writer.path)) { try writer.scalar("x", 1, step: 1) }
        #expect(throws: TensorBoardError.closed(path: writer.path)) { try writer.flush() }
    }

    @Test func appendsAreBufferedUntilFlush() throws {
        let dir = try IOTestDirectory()
        let writer = try TensorBoardWriter(directory: dir.path)
        let size = { (try? FileManager.default.attributesOfItem(atPath: writer.path)[.size] as? Int) ?? -1 }
        let header = size()
        #expect(header == TFRecord.frame(TensorBoardEvent.fileVersion(wallTime: 0)).count)  // flushed by init
        for step in 0..<10 { try writer.scalar("loss/train", Double(step), step: step) }
        #expect(size() == header)
        try writer.flush()
        #expect(size() > header)
        #expect(try EventFileReader.events(path: writer.path).count == 11)
        writer.close()
    }

    @Test func closeOnDeinitFlushes() throws {
        let dir = try IOTestDirectory()
        var path = ""
        do {
            let writer = try TensorBoardWriter(directory: dir.path)
            path = writer.path
            try writer.scalar("loss/test", 1, step: 1)
        }
        #expect(try EventFileReader.events(path: path).map(\.tag) == [nil, "loss/test"])
    }

    @Test func secondWriterGetsItsOwnFile() throws {
        let dir = try IOTestDirectory()
        let writers = try (0..<3).map { _ in try TensorBoardWriter(directory: dir.path) }
        #expect(Set(writers.map(\.path)).count == 3)
        #expect(try Self.eventFiles(dir.path).count == 3)
        for (i, w) in writers.enumerated() {
            try w.scalar("loss/train", Double(i), step: i)
            w.close()
            #expect(try EventFileReader.events(path: w.path).last?.scalar == Float(i))
        }
    }

    @Test func sessionStartEvent() throws {
        let dir = try IOTestDirectory()
        let writer = try TensorBoardWriter(directory: dir.path)
        try writer.sessionStart(step: 1171)
        writer.close()
        let events = try EventFileReader.events(path: writer.path)
        #expect(events.count == 2)
        #expect(events[1].sessionStatus == 1 && events[1].step == 1171 && events[1].tag == nil)
    }

    @Test func rejectsBadInput() throws {
        let dir = try IOTestDirectory()
        let writer = try TensorBoardWriter(directory: dir.path)
        #expect(throws: TensorBoardError.invalidTag(tag: "", reason: "is empty")) { try writer.scalar("", 1, step: 0) }
        #expect(throws: TensorBoardError.self) { try writer.scalar("a\nb", 1, step: 0) }
        let png = Self.png()
        #expect(throws: TensorBoardError.self) { try writer.image("g", png: png, width: 28, height: 28, channels: 5, step: 0) }
        #expect(throws: TensorBoardError.self) { try writer.image("g", png: png, width: 0, height: 28, channels: 1, step: 0) }
        #expect(throws: TensorBoardError.invalidImage(tag: "g", reason: "the bytes are not a PNG (signature missing)")) {
            try writer.image("g", png: [1, 2, 3], width: 1, height: 1, channels: 1, step: 0)
        }
        writer.close()
        // Nothing but the header was written.
        #expect(try EventFileReader.events(path: writer.path).count == 1)
    }

    @Test func unusableDirectory() throws {
        let dir = try IOTestDirectory()
        try IOTestFiles.write([1], to: dir.file("plain"))
        #expect(throws: TensorBoardError.self) { try TensorBoardWriter(directory: dir.file("plain/tb")) }
        do {
            _ = try TensorBoardWriter(directory: dir.file("plain/tb"))
        } catch let error as TensorBoardError {
            #expect(error.description.hasPrefix("TensorBoard log directory \(dir.file("plain/tb")): cannot create: "))
        }
        if getuid() != 0 {  // root writes anywhere
            try FileManager.default.createDirectory(atPath: dir.file("ro"), withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o555])
            #expect(throws: TensorBoardError.self) { try TensorBoardWriter(directory: dir.file("ro")) }
        }
    }

    // MARK: Fixture for the TensorBoard (Python) check

    /// The run that scripts/scenarios/tb-check.sh --self-test reads with TensorBoard's own loader: every
    /// tag the trainer writes, two images, and a restart that must purge the steps after it.
    /// Returns the expectation in tb_read.py's format.
    static func writeFixture(to dir: String) throws -> JSON {
        let scalarTags = ["loss/train", "loss/test", "loss/train_bce", "loss/train_kl",
                          "throughput/samples_per_s", "optimizer/lr"]
        func value(_ tagIndex: Int, _ step: Int, restarted: Bool = false) -> Double {
            (restarted ? 1000 : 0) + Double(tagIndex) * 100 + 90.0 / Double(step) + 0.125
        }
        let first = try TensorBoardWriter(directory: dir)
        for step in 1...3 {
            for (i, tag) in scalarTags.enumerated() { try first.scalar(tag, value(i, step), step: step) }
        }
        try first.image("grid/generation", png: png(seed: 1), width: 28, height: 28, channels: 1, step: 1)
        try first.image("grid/generation", png: png(seed: 3), width: 28, height: 28, channels: 1, step: 3)
        first.close()
        // A resumed run from a checkpoint at step 2: everything at steps >= 3 is stale.
        let second = try TensorBoardWriter(directory: dir)
        try second.sessionStart(step: 3)
        for step in 3...4 { try second.scalar("loss/train", value(0, step, restarted: true), step: step) }
        try second.image("grid/generation", png: png(width: 30, height: 20, channels: 3, seed: 4),
                         width: 30, height: 20, channels: 3, step: 4)
        second.close()

        var scalars: [(String, JSON)] = []
        for (i, tag) in scalarTags.enumerated() {
            var points = (1...2).map { JSON.array([.number(Double($0)), .number(value(i, $0))]) }
            if i == 0 { points += (3...4).map { .array([.number(Double($0)), .number(value(0, $0, restarted: true))]) } }
            scalars.append((tag, .array(points)))
        }
        return .object([
            ("scalars", .object(scalars)),
            ("images", .object([("grid/generation", .array([
                .object([("step", 1), ("width", 28), ("height", 28)]),
                .object([("step", 4), ("width", 30), ("height", 20)]),
            ]))])),
            ("only_these_tags", .bool(true)),
            ("event_files", 2),
        ])
    }

    @Test func fixtureForTensorBoardCheck() throws {
        let dir = try IOTestDirectory()
        _ = try Self.writeFixture(to: dir.path)
        let files = try Self.eventFiles(dir.path)
        #expect(files.count == 2)
        let events = try files.flatMap { try EventFileReader.events(path: dir.file($0)) }
        #expect(events.filter { $0.fileVersion != nil }.count == 2)
        #expect(events.filter { $0.scalar != nil }.count == 6 * 3 + 2)
        #expect(events.filter { $0.image != nil }.count == 3)
        #expect(events.filter { $0.sessionStatus == 1 }.map(\.step) == [3])

        // With DISTTRAIN_TB_CHECK_DIR set (scripts/scenarios/tb-check.sh --self-test), write the same
        // fixture there with its expectation for TensorBoard's own loader to verify.
        if let target = ProcessInfo.processInfo.environment["DISTTRAIN_TB_CHECK_DIR"], !target.isEmpty {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            for old in try Self.eventFiles(target) { try FileManager.default.removeItem(atPath: target + "/" + old) }
            let expected = try Self.writeFixture(to: target)
            try AtomicFile.write(Array((expected.serialized + "\n").utf8), to: target + "/expected.json")
        }
    }
}
