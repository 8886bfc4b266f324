/// One workspace's pointers for one LayerSequence: per layer input, output and scratch.
struct StackBuffers {
    var inputs: [UnsafeMutablePointer<Float>]
    var outputs: [UnsafeMutablePointer<Float>]
    var scratch: [UnsafeMutableRawPointer]
}
