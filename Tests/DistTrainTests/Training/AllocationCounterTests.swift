import Testing
@testable import DistTrain
@testable import DistTrainIO

/// The interposed malloc family really counts: otherwise "0 allocations per step" in the
/// metrics would prove nothing. Other suites run in parallel and allocate too, so these
/// tests only rely on the count never going down and rising by at least what they do.
@Suite("Allocation counter")
struct AllocationCounterTests {
    @Test("is available on this (glibc) system")
    func available() {
        #expect(AllocationCounter.isAvailable)
    }

    @Test("a heap allocation made by Swift is counted")
    func countsSwiftAllocations() {
        let before = AllocationCounter.count
        let objects = (0..<10).map { i in Box(i) }   // ten class instances: ten swift_allocObject calls
        let after = AllocationCounter.count
        #expect(objects.map(\.value).reduce(0, +) == 45)
        #expect(after >= before + 10, "expected at least 10 allocations, counted \(after - before)")
    }

    @Test("a C-level allocation (posix_memalign through UnsafeMutableRawPointer) is counted")
    func countsAlignedAllocations() {
        let before = AllocationCounter.count
        let p = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        let after = AllocationCounter.count
        p.deallocate()
        #expect(after >= before + 1)
    }

    final class Box {
        let value: Int
        init(_ value: Int) { self.value = value }
    }
}
