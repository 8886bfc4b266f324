import CZlib
import Foundation
import Testing

/// A fresh temporary directory, removed when the value goes away.
public final class IOTestDirectory {
    public let path: String

    public init() throws {
        path = NSTemporaryDirectory() + "disttrain-io-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path of `name` inside the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Names of the entries in the directory, sorted.
    public func listing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

public enum IOTestFiles {
    /// The vendored MNIST directory of the package.
    public static let mnist: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data/mnist").path

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes `bytes` gzip-compressed with zlib's own gzip writer.
    public static func writeGzip(_ bytes: [UInt8], to path: String) throws {
        guard let file = gzopen(path, "wb") else { throw CocoaError(.fileWriteUnknown) }
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        let closed = gzclose(file)
        guard written == Int32(bytes.count), closed == Z_OK else { throw CocoaError(.fileWriteUnknown) }
    }

    /// IDX bytes: big-endian magic and dimensions, then the payload.
    public static func idx(magic: UInt32, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        for value in [magic] + dims {
            bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        return bytes + payload
    }

    /// Runs a command found on PATH (with TestProcess, time limit 120 s); nil if it could not be started.
    public static func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String)? {
        guard let r = try? TestProcess.run("/usr/bin/env", [executable] + arguments, timeout: 120) else { return nil }
        return (r.status, r.output)
    }

    /// Whether `python3` runs at all.
    public static let hasPython: Bool = run("python3", ["-c", "pass"])?.status == 0
}
