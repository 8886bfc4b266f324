/// TFRecord framing: uint64 length (little-endian), masked CRC-32C of those 8 bytes,
/// the data, masked CRC-32C of the data.
enum TFRecord {
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        appendLE(UInt64(data.count), to: &record)
        appendLE(CRC32C.mask(CRC32C.checksum(record)), to: &record)
        record += data
        appendLE(CRC32C.mask(CRC32C.checksum(data)), to: &record)
        return record
    }

    static func appendLE<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes += $0 }
    }
}
