/// Protocol buffer wire format for the handful of field kinds an `Event` needs.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    /// Base-128 varint, least significant group first, high bit set on all but the last byte.
    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }

    mutating func key(_ field: Int, _ wire: WireType) {
        bytes += ProtoWriter.varint(UInt64(field) << 3 | wire.rawValue)
    }

    /// int32/int64/enum: a varint of the two's-complement bits (negative values take 10 bytes).
    mutating func int(_ field: Int, _ value: Int64) {
        key(field, .varint)
        bytes += ProtoWriter.varint(UInt64(bitPattern: value))
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, .fixed64)
        TFRecord.appendLE(value.bitPattern, to: &bytes)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        TFRecord.appendLE(value.bitPattern, to: &bytes)
    }

    mutating func data<C: Collection>(_ field: Int, _ value: C) where C.Element == UInt8 {
        key(field, .lengthDelimited)
        bytes += ProtoWriter.varint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) { data(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        data(field, inner.bytes)
    }
}
