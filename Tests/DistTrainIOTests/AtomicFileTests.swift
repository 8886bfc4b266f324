import Foundation
import Testing
@testable import DistTrainIO
import IOTestSupport

@Suite struct AtomicFileTests {
    @Test func contentLandsAndReplaces() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("out.bin")
        try AtomicFile.write([1, 2, 3], to: path)
        #expect(try IOTestFiles.read(path) == [1, 2, 3])
        try AtomicFile.write(to: path) { sink in
            try sink.write([9, 8])
            try [UInt8](repeating: 7, count: 100_000).withUnsafeBytes { try sink.write($0) }
            #expect(sink.bytesWritten == 100_002)
        }
        #expect(try IOTestFiles.read(path) == [9, 8] + [UInt8](repeating: 7, count: 100_000))
        #expect(try dir.listing() == ["out.bin"])  // no temp file left behind
        #expect(try AtomicFile.readAll(path: path).count == 100_002)
    }

    @Test func emptyFile() throws {
        let dir = try IOTestDirectory()
        try AtomicFile.write([], to: dir.file("empty"))
        #expect(try AtomicFile.readAll(path: dir.file("empty")) == [])
    }

    struct Boom: Error {}

    @Test func throwingBodyLeavesNothing() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("model.bin")
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: path) { sink in
                try sink.write([1, 2, 3])
                throw Boom()
            }
        }
        #expect(try dir.listing() == [])
    }

    @Test func throwingBodyKeepsOldFile() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("model.bin")
        try AtomicFile.write([42], to: path)
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: path) { sink in
                try sink.write([1, 2, 3])
                throw Boom()
            }
        }
        #expect(try IOTestFiles.read(path) == [42])
        #expect(try dir.listing() == ["model.bin"])
    }

    @Test func missingDirectoryCannotCreate() throws {
        let dir = try IOTestDirectory()
        let path = dir.file("no/such/dir/file.bin")
        let error = #expect(throws: FileError.self) { try AtomicFile.write([1], to: path) }
        guard case let .cannotCreate(errorPath, reason)? = error else {
            Issue.record("expected cannotCreate, got \(String(describing: error))")
            return
        }
        #expect(errorPath == path)
        #expect(reason == "No such file or directory")
        #expect(error?.description == "\(path): cannot create: No such file or directory")
    }

    @Test func pathUnderRegularFileCannotCreate() throws {
        // Root ignores permission bits, but nothing can be created under a regular file.
        let dir = try IOTestDirectory()
        try IOTestFiles.write([0], to: dir.file("plain"))
        let path = dir.file("plain/x")
        let error = #expect(throws: FileError.self) { try AtomicFile.write([1], to: path) }
        #expect(error == .cannotCreate(path: path, reason: "Not a directory"))
    }

    @Test func readAllErrors() throws {
        let dir = try IOTestDirectory()
        let missing = dir.file("missing")
        #expect(throws: FileError.notFound(path: missing)) { try AtomicFile.readAll(path: missing) }
        let error = #expect(throws: FileError.self) { try AtomicFile.readAll(path: dir.path) }
        guard case .readFailed? = error else {
            Issue.record("expected readFailed for a directory, got \(String(describing: error))")
            return
        }
    }

    @Test func directoryOfPath() {
        #expect(AtomicFile.directory(of: "a/b/c") == "a/b")
        #expect(AtomicFile.directory(of: "c") == ".")
        #expect(AtomicFile.directory(of: "/c") == "/")
    }
}
