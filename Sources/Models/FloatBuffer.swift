/// A fixed-size, 64-byte-aligned block of Floats, zero-initialized.
///
/// Parameters, gradients, optimizer moments and activations all live in these: one allocation
/// up front, then raw pointers in the step loop, so the loop never touches the heap.
public final class FloatBuffer {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }

    /// A view of `count` floats starting at `offset`.
    public func slice(_ offset: Int, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(offset >= 0 && offset + count <= self.count)
        return UnsafeMutableBufferPointer(start: base + offset, count: count)
    }

    public func zero() { base.update(repeating: 0, count: count) }

    /// Copies the contents into a new array (for tests and checkpoints, not the step loop).
    public func toArray() -> [Float] { Array(buffer) }

    /// Overwrites the contents from `values`, which must have the same count.
    public func assign(_ values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: count) }
    }
}
