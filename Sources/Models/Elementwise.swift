/// Applies an 8-lane vector function over a buffer, the tail padded to one vector.
enum Elementwise {
    @inline(__always)
    static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                    _ f: (FastMath.V) -> FastMath.V) {
        var i = 0
        while i + 8 <= count {
            FastMath.store(f(FastMath.load(x + i)), y + i)
            i += 8
        }
        if i < count {
            var v = FastMath.V(repeating: 0)
            for k in 0..<(count - i) { v[k] = x[i + k] }
            let r = f(v)
            for k in 0..<(count - i) { y[i + k] = r[k] }
        }
    }
}
