import Foundation
import Glibc
import Testing
@testable import DistTrainIO
import IOTestSupport

/// Issue 17 item 1 and 7: what an atomic rename may replace, and reads that stop at a limit.
@Suite struct AtomicFileTargetTests {
    @Test func refusesDevicesAndFIFOs() throws {
        let dir = try IOTestDirectory()
        let fifo = dir.file("fifo")
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(throws: FileError.notRegularFile(path: fifo, kind: "a FIFO (named pipe)")) { try AtomicFile.write([1], to: fifo) }
        var info = stat()
        #expect(lstat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(throws: FileError.notRegularFile(path: "/dev/null", kind: "a character device")) { try AtomicFile.write([1], to: "/dev/null") }
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
        #expect(throws: FileError.notRegularFile(path: dir.path, kind: "a directory")) { try AtomicFile.write([1], to: dir.path) }
        #expect(try dir.listing() == ["fifo"])  // no temporary left
    }

    @Test func followsLinksToRegularFilesOnly() throws {
        let dir = try IOTestDirectory()
        try AtomicFile.write([1], to: dir.file("target"))
        #expect(symlink("target", dir.file("link")) == 0)
        try AtomicFile.write([2, 3], to: dir.file("link"))
        #expect(try IOTestFiles.read(dir.file("target")) == [2, 3])
        var info = stat()
        #expect(lstat(dir.file("link"), &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)

        #expect(symlink("missing", dir.file("dangling")) == 0)
        #expect(throws: FileError.notRegularFile(path: dir.file("dangling"), kind: "a symbolic link to a missing file")) {
            try AtomicFile.write([1], to: dir.file("dangling"))
        }
        #expect(symlink("/proc/self/fd/1", dir.file("stdout")) == 0)
        #expect(throws: FileError.self) { try AtomicFile.write([1], to: dir.file("stdout")) }
        #expect(throws: FileError.self) { try AtomicFile.write([1], to: "/proc/self/fd/1") }
        #expect(symlink("/dev/null", dir.file("null")) == 0)
        #expect(throws: FileError.self) { try AtomicFile.write([1], to: dir.file("null")) }
        #expect(try dir.listing().sorted() == ["dangling", "link", "null", "stdout", "target"])
    }

    @Test func readsStopAtTheLimit() throws {
        #expect(throws: FileError.tooLarge(path: "/dev/zero", limit: 4096)) { try AtomicFile.readAll(path: "/dev/zero", limit: 4096) }
        #expect(throws: FileBytes.ReadError.self) { try FileBytes.read("/dev/zero", limit: 4096) }
        let dir = try IOTestDirectory()
        try AtomicFile.write([UInt8](repeating: 1, count: 5000), to: dir.file("f"))
        #expect(throws: FileError.tooLarge(path: dir.file("f"), limit: 4999)) { try AtomicFile.readAll(path: dir.file("f"), limit: 4999) }
        #expect(try AtomicFile.readAll(path: dir.file("f"), limit: 5000).count == 5000)
        #expect(try FileBytes.read(dir.file("f"), limit: 5000).count == 5000)
    }

    /// A raw IDX file whose header promises more records than it holds is refused from its
    /// size, before any payload is read or allocated.
    @Test func idxHeaderCheckedAgainstTheFileSize() throws {
        let dir = try IOTestDirectory()
        var bytes: [UInt8] = []
        for v: UInt32 in [0x803, 2_000_000_000, 28, 28] { bytes += [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } }
        try AtomicFile.write(bytes + [UInt8](repeating: 0, count: 784), to: dir.file("liar"))
        #expect(throws: IDXError.truncated(path: dir.file("liar"), records: 2_000_000_000, expectedBytes: 16 + 2_000_000_000 * 784, actualBytes: 16 + 784)) {
            try IDX.header(path: dir.file("liar"))
        }
        #expect(throws: IDXError.self) { try IDX.readImages(path: dir.file("liar")) }
    }
}
