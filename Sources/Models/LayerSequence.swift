/// A built stack of layers and how data flows through it: which buffer feeds each layer
/// (views such as Flatten pass their input's buffer on), which layer writes the stack's final
/// output, and which is the first to do work (its input gradient may be skipped).
public struct LayerSequence: Sendable {
    public let layers: [any Layer]
    public let inputShape: TensorShape
    /// For each layer, the index of the layer whose buffer is its input (-1: the stack input).
    let source: [Int]
    /// Indices of the layers that do work (not views), in forward order.
    let compute: [Int]
    /// For each layer, whether its input is a ReLU's output (a Linear with ReLU fused, or a ReLU
    /// layer, possibly seen through views): backward then needs its input gradient only at the
    /// input's nonzeros.
    let inputFromReLU: [Bool]

    /// Builds `specs` from `input`. `names(i)` names spec i. A Linear directly followed by
    /// ReLU / LeakyReLU absorbs it (fused bias + activation). When `join` is given, a label
    /// join is inserted at the first flat point (or after an added flatten at the end).
    init(_ specs: [LayerSpec], input: TensorShape, names: (Int) -> String, builder: inout LayerBuilder,
         join: (classes: Int, name: String)?) {
        var layers: [any Layer] = []
        var shape = input
        var joined = join == nil
        var i = 0
        while i < specs.count {
            var fused: Activation?
            if case .linear = specs[i], i + 1 < specs.count {
                if case .relu = specs[i + 1] { fused = .relu }
                if case let .leakyReLU(slope) = specs[i + 1] { fused = .leakyReLU(slope: slope) }
            }
            let layer = specs[i].make(input: shape, name: names(i), builder: &builder, fused: fused)
            layers.append(layer)
            shape = layer.outputShape
            i += fused == nil ? 1 : 2
            if !joined && shape.isFlat, let join {
                layers.append(LabelConcat(input: shape, classes: join.classes, name: join.name))
                shape = layers.last!.outputShape
                joined = true
            }
        }
        if !joined, let join {
            layers.append(Reshape(input: shape, output: .flat(shape.count), name: join.name + ".flatten"))
            layers.append(LabelConcat(input: .flat(shape.count), classes: join.classes, name: join.name))
        }
        self.init(layers: layers, input: input)
    }

    init(layers: [any Layer], input: TensorShape) {
        self.layers = layers
        inputShape = input
        var source: [Int] = [], compute: [Int] = []
        var current = -1
        for (i, l) in layers.enumerated() {
            source.append(current)
            if !l.isView { current = i; compute.append(i) }
        }
        self.source = source
        self.compute = compute
        inputFromReLU = source.map { s in
            guard s >= 0 else { return false }
            if layers[s] is ReLU { return true }
            if let l = layers[s] as? Linear, case .relu? = l.activation { return true }
            return false
        }
    }

    public var outputShape: TensorShape { layers.last?.outputShape ?? inputShape }

    /// Where each layer reads its input and writes its output: `final` for the last working
    /// layer, a buffer from `allocate` for the others, a view's input buffer for views.
    func wire(input: UnsafeMutablePointer<Float>, final: UnsafeMutablePointer<Float>,
              allocate: (Int) -> UnsafeMutablePointer<Float>, capacity: Int) -> (inputs: [UnsafeMutablePointer<Float>], outputs: [UnsafeMutablePointer<Float>]) {
        var outputs: [UnsafeMutablePointer<Float>] = []
        var inputs: [UnsafeMutablePointer<Float>] = []
        for (i, l) in layers.enumerated() {
            let x = source[i] < 0 ? input : outputs[source[i]]
            inputs.append(x)
            if l.isView { outputs.append(x) } else if i == compute.last { outputs.append(final) } else { outputs.append(allocate(capacity * l.outputShape.count)) }
        }
        return (inputs, outputs)
    }

    /// Widest activation (input or output) of any layer, in floats per row.
    var widest: Int { layers.reduce(inputShape.count) { max($0, $1.inputShape.count, $1.outputShape.count) } }

    /// Forward through the working layers. `needs(offset)` precedes each layer with parameters:
    /// the layer is about to read its block, which starts at `offset` (a caller whose parameters
    /// are still arriving waits there; see ZeRO-1's `ParameterGather`).
    func forward(_ buffers: StackBuffers, rows: Int, _ context: LayerContext, needs: (Int) -> Void = { _ in }) {
        var c = context
        for i in compute {
            if let offset = layers[i].parameterOffset { needs(offset) }
            c.scratch = buffers.scratch[i]
            layers[i].forward(buffers.inputs[i], buffers.outputs[i], rows: rows, c)
        }
    }

    /// From dy of the final output down to the first working layer, whose input gradient goes
    /// to `dInput` (skipped when nil). Gradients between layers alternate between `spare` and
    /// `other`. `finished(offset)` follows each layer with parameters.
    @inline(__always)
    func backward(_ buffers: StackBuffers, dy dFinal: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?,
                  spare spareIn: UnsafeMutablePointer<Float>, other otherIn: UnsafeMutablePointer<Float>,
                  rows: Int, _ context: LayerContext, finished: (Int) -> Void) {
        var c = context
        var dy = dFinal, spare = spareIn, other = otherIn
        let first = compute.first
        for i in compute.reversed() {
            let isFirst = i == first
            let dx = isFirst ? dInput : spare
            c.scratch = buffers.scratch[i]
            c.inputFromReLU = inputFromReLU[i]
            layers[i].backward(buffers.inputs[i], buffers.outputs[i], dy, dx, rows: rows, c)
            if let offset = layers[i].parameterOffset { finished(offset) }
            if !isFirst { dy = spare; swap(&spare, &other) }
        }
    }
}
