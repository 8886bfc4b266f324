import COpenBLAS
import CSparseProducts
import Testing
@testable import Models

/// SparseInput: the products over the nonzeros of a mostly-zero input equal the dense sgemm to
/// rounding (forward and weight gradient, overwrite and accumulate, every panel tail), give the
/// same bits on any thread count and for a row whatever batch it is in, and a Linear layer takes
/// the path only for sparse batches and then gets the dense path's gradients.
struct SparseInputTests {
    /// x[rows, in] with about `density` nonzeros in (0, 1], W[out, in] and dy[rows, out] in (-1, 1).
    struct Problem {
        let rows: Int, inFeatures: Int, outFeatures: Int
        var x: [Float], w: [Float], dy: [Float]

        init(rows: Int, inFeatures: Int, outFeatures: Int, density: Double, seed: UInt64 = 1) {
            self.rows = rows; self.inFeatures = inFeatures; self.outFeatures = outFeatures
            var rng = SplitMix64(seed: seed &+ UInt64(rows * 1_000_003 + inFeatures * 1009 + outFeatures))
            x = (0..<(rows * inFeatures)).map { _ in Double(rng.uniform(0, 1)) < density ? rng.uniform(0.01, 1) : 0 }
            w = (0..<(outFeatures * inFeatures)).map { _ in rng.uniform(-1, 1) }
            dy = (0..<(rows * outFeatures)).map { _ in rng.uniform(-1, 1) }
        }

        var scratchBytes: Int { SparseInput.scratchBytes(capacity: rows, inFeatures: inFeatures, outFeatures: outFeatures) }

        /// (sparse, dense) y = x W^T.
        func forward(force: Bool = true) -> (sparse: [Float], dense: [Float], tookSparse: Bool) {
            var sparse = [Float](repeating: .nan, count: rows * outFeatures)
            var dense = sparse
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            let took = SparseInput.forward(weights: w, x: x, y: &sparse, rows: rows, inFeatures: inFeatures,
                                           outFeatures: outFeatures, capacity: rows, scratch: scratch, force: force)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures), 1,
                        x, Int32(inFeatures), w, Int32(inFeatures), 0, &dense, Int32(outFeatures))
            return (sparse, dense, took)
        }

        /// (sparse, dense) dW = start * beta + dy^T x, after a forced sparse forward.
        func weightGradient(accumulate: Bool) -> (sparse: [Float], dense: [Float]) {
            let start = (0..<(outFeatures * inFeatures)).map { Float($0 % 7) - 3 }
            var sparse = start, dense = start
            var y = [Float](repeating: 0, count: rows * outFeatures)
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            let forward = SparseInput.forward(weights: w, x: x, y: &y, rows: rows, inFeatures: inFeatures,
                                              outFeatures: outFeatures, capacity: rows, scratch: scratch, force: true)
            let took = SparseInput.weightGradient(dy: dy, dw: &sparse, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                                  capacity: rows, accumulate: accumulate, scratch: scratch)
            precondition(forward && took)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(rows), 1,
                        dy, Int32(outFeatures), x, Int32(inFeatures), accumulate ? 1 : 0, &dense, Int32(inFeatures))
            return (sparse, dense)
        }
    }

    /// Largest |a - b| relative to the largest |b| (at least 1).
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(1, b.map(abs).max() ?? 1)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    // (rows, in, out): the seed CVAE's first two layers, and outputs that end in a narrower panel,
    // a partial 32-block, a partial 8-block and single outputs.
    static let shapes = [(256, 794, 512), (64, 512, 512), (33, 100, 784), (7, 64, 37), (5, 70, 8), (300, 96, 100)]

    @Test("the CSR form built in parts of 32 rows (as the pool runs them) and joined equals one serial pass")
    func csrInParts() {
        for (rows, density) in [(1, 0.2), (31, 0.19), (32, 0.0), (33, 0.22), (100, 0.5), (256, 0.19)] {
            let p = Problem(rows: rows, inFeatures: 794, outFeatures: 8, density: density, seed: UInt64(rows))
            let room = rows * 794
            var start = [Int32](repeating: -1, count: rows + 1), index = [Int32](repeating: -1, count: room)
            var value = [Float](repeating: .nan, count: room)
            let serial = dt_sparse_rows(p.x, Int32(rows), 794, &start, &index, &value)
            var pStart = [Int32](repeating: -1, count: rows + 1), pIndex = [Int32](repeating: -1, count: room)
            var pValue = [Float](repeating: .nan, count: room)
            var counts: [Int64] = []
            for r0 in stride(from: 0, to: rows, by: 32) {
                counts.append(dt_sparse_rows_part(p.x, Int32(r0), Int32(min(r0 + 32, rows)), 794, &pStart, &pIndex, &pValue))
            }
            let joined = dt_sparse_rows_join(Int32(rows), 794, 32, counts, &pStart, &pIndex, &pValue)
            let n = Int(serial)
            #expect(joined == serial, "\(rows) rows")
            #expect(pStart == start, "\(rows) rows: row starts")
            #expect(Array(pIndex[..<n]) == Array(index[..<n]) && Array(pValue[..<n]) == Array(value[..<n]), "\(rows) rows: nonzeros")
        }
    }

    @Test("forward over the nonzeros equals the dense sgemm", arguments: shapes)
    func forwardMatchesDense(shape: (Int, Int, Int)) {
        for density in [0.0, 0.05, 0.2, 1.0] {
            let p = Problem(rows: shape.0, inFeatures: shape.1, outFeatures: shape.2, density: density)
            let r = p.forward()
            #expect(r.tookSparse)
            #expect(!r.sparse.contains { $0.isNaN }, "\(shape) density \(density): an output was not written")
            let e = Self.relativeError(r.sparse, r.dense)
            #expect(e < 1e-5, "\(shape) density \(density): off by \(e)")
        }
    }

    @Test("weight gradient over the nonzeros equals the dense sgemm, overwriting and accumulating", arguments: shapes)
    func weightGradientMatchesDense(shape: (Int, Int, Int)) {
        for accumulate in [false, true] {
            let p = Problem(rows: shape.0, inFeatures: shape.1, outFeatures: shape.2, density: 0.2)
            let r = p.weightGradient(accumulate: accumulate)
            let e = Self.relativeError(r.sparse, r.dense)
            #expect(e < 1e-5, "\(shape) accumulate \(accumulate): off by \(e)")
        }
    }

    @Test("the batch's density decides: dense batches are left to the sgemm, and backward follows forward")
    func densityDecides() {
        let dense = Problem(rows: 64, inFeatures: 200, outFeatures: 64, density: 0.6)
        #expect(!dense.forward(force: false).tookSparse)
        let sparse = Problem(rows: 64, inFeatures: 200, outFeatures: 64, density: 0.1)
        #expect(sparse.forward(force: false).tookSparse)
        // After a dense forward the weight gradient is not taken over.
        var y = [Float](repeating: 0, count: 64 * 64), dw = [Float](repeating: 0, count: 64 * 200)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: dense.scratchBytes, alignment: 64)
        defer { scratch.deallocate() }
        _ = SparseInput.forward(weights: dense.w, x: dense.x, y: &y, rows: 64, inFeatures: 200, outFeatures: 64, capacity: 64, scratch: scratch)
        #expect(!SparseInput.weightGradient(dy: dense.dy, dw: &dw, rows: 64, inFeatures: 200, outFeatures: 64, capacity: 64,
                                            accumulate: false, scratch: scratch))
    }

    @Test("the same bits on 1, 2 and 3 threads, forward and weight gradient")
    func sameBitsAnyThreads() {
        let p = Problem(rows: 256, inFeatures: 794, outFeatures: 512, density: 0.19)
        RankThreads.set(1)
        let y1 = p.forward().sparse.map(\.bitPattern), g1 = p.weightGradient(accumulate: true).sparse.map(\.bitPattern)
        for threads in [2, 3] {
            RankThreads.set(threads)
            #expect(p.forward().sparse.map(\.bitPattern) == y1, "\(threads) threads: other forward bits")
            #expect(p.weightGradient(accumulate: true).sparse.map(\.bitPattern) == g1, "\(threads) threads: other gradient bits")
        }
        RankThreads.set(1)
    }

    @Test("a row's output does not depend on the other rows of the batch")
    func rowsIndependent() {
        let p = Problem(rows: 40, inFeatures: 794, outFeatures: 512, density: 0.19)
        let whole = p.forward().sparse
        var alone = Problem(rows: 1, inFeatures: 794, outFeatures: 512, density: 0)
        alone.w = p.w
        for r in [0, 17, 39] {
            alone.x = Array(p.x[(r * 794)..<((r + 1) * 794)])
            #expect(alone.forward().sparse.map(\.bitPattern) == whole[(r * 512)..<((r + 1) * 512)].map(\.bitPattern), "row \(r)")
        }
    }

    @Test("a Linear layer with a sparse input: outputs and gradients equal the dense path's")
    func linearLayer() {
        let rows = 48, inFeatures = 300, outFeatures = 96
        let p = Problem(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, density: 0.15)
        var layout = ParameterLayout()
        let layer = Linear(inFeatures: inFeatures, outFeatures: outFeatures, name: "l", activation: .relu, layout: &layout)
        #expect(layer.takesSparseInput && layer.scratchBytes(capacity: rows) >= p.scratchBytes)
        var params = [Float](repeating: 0, count: layout.totalCount)
        var rng = SplitMix64(seed: 9)
        layer.initialize(&params, rng: &rng)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: layer.scratchBytes(capacity: rows), alignment: 64)
        defer { scratch.deallocate() }
        let ids = [Int32](repeating: 0, count: rows), labels = ids
        var y = [Float](repeating: 0, count: rows * outFeatures)
        var grads = [Float](repeating: 0, count: layout.totalCount)
        var dy = p.dy
        params.withUnsafeBufferPointer { pp in
            grads.withUnsafeMutableBufferPointer { gp in
                let c = LayerContext(params: pp.baseAddress!, grads: gp.baseAddress!, mode: .training, ids: ids, labels: labels,
                                     capacity: rows, scratch: scratch)
                layer.forward(p.x, &y, rows: rows, c)
                layer.backward(p.x, y, &dy, nil, rows: rows, c)
            }
        }
        #expect(SparseInput.Buffers(scratch, .init(capacity: rows, inFeatures: inFeatures, outFeatures: outFeatures)).header[0] == Int64(rows),
                "the layer did not take the sparse path")
        // The dense reference: the context-free API (always sgemm), the same ReLU and bias.
        var yDense = [Float](repeating: 0, count: rows * outFeatures)
        var gDense = [Float](repeating: 0, count: layout.totalCount)
        var dyDense = p.dy
        layer.forwardNoBias(params, x: p.x, y: &yDense, rows: rows)
        Activation.relu.biasForward(&yDense, bias: params.withUnsafeBufferPointer { $0.baseAddress! + layer.biasOffset },
                                    rows: rows, width: outFeatures)
        Activation.relu.backward(&dyDense, outputs: yDense, count: rows * outFeatures)
        layer.backward(params, grads: &gDense, x: p.x, dy: dyDense, dx: nil, rows: rows, accumulate: false)
        #expect(Self.relativeError(y, yDense) < 1e-5)
        #expect(Self.relativeError(grads, gDense) < 1e-5)
    }

    @Test("below a ReLU: the input gradient at the input's nonzeros equals dy W, 0 elsewhere", arguments: shapes)
    func maskedInputGradient(shape: (Int, Int, Int)) {
        let (rows, inFeatures, outFeatures) = shape
        let p = Problem(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, density: 0.2)
        var y = [Float](repeating: 0, count: rows * outFeatures)
        var dx = [Float](repeating: .nan, count: rows * inFeatures), dense = dx
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: p.scratchBytes, alignment: 64)
        defer { scratch.deallocate() }
        #expect(SparseInput.forward(weights: p.w, x: p.x, y: &y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                    capacity: rows, scratch: scratch, force: true))
        #expect(SparseInput.maskedInputGradient(dy: p.dy, dx: &dx, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                                capacity: rows, scratch: scratch))
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inFeatures), Int32(outFeatures), 1,
                    p.dy, Int32(outFeatures), p.w, Int32(inFeatures), 0, &dense, Int32(inFeatures))
        let masked = zip(dense, p.x).map { $1 != 0 ? $0 : 0 }
        #expect(!dx.contains { $0.isNaN }, "\(shape): an entry was not written")
        #expect(zip(dx, p.x).allSatisfy { $1 != 0 || $0 == 0 }, "\(shape): nonzero gradient where the input is 0")
        let e = Self.relativeError(dx, masked)
        #expect(e < 1e-5, "\(shape): off by \(e)")
    }

    @Test("the seed CVAE on mostly-zero pixels: loss and every gradient as with dense products (both encoder layers sparse, the second's input gradient masked)")
    func seedModelMatchesDense() {
        let model = VAE(VAEArchitecture())
        let a = model.architecture
        let params = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 3)
        // Biases of -0.1 leave about a fifth of the first layer's ReLU outputs lit, so the second
        // layer's input is sparse too and its input gradient takes the masked product.
        let firstLayer = model.encoder.layers[model.encoder.compute[0]] as! Linear
        (params.base + firstLayer.biasOffset).update(repeating: -0.1, count: firstLayer.outFeatures)
        let rows = 64
        var rng = SplitMix64(seed: 11)
        // MNIST-like rows: about 19% of the pixels lit.
        let pixels = (0..<(rows * a.inputShape.count)).map { _ in rng.uniform(0, 1) < 0.19 ? rng.uniform(0.05, 1) : Float(0) }
        func run(sparse: Bool) -> (loss: BatchLoss, gradient: [Float], tookSparse: Bool) {
            let ws = VAEWorkspace(architecture: a, capacity: rows)
            ws.sparseInputs = sparse
            for r in 0..<rows {
                for j in 0..<a.inputShape.count { ws.encoderInput.base[r * a.encoderInputWidth + j] = pixels[r * a.inputShape.count + j] }
                ws.ids[r] = Int32(r)
                ws.setLabel(row: r, label: r % a.classes, architecture: a)
            }
            for i in 0..<(rows * a.latent) { ws.eps.base[i] = Float(i % 13) / 6 - 1 }
            let g = FloatBuffer(count: model.parameterCount)
            let loss = model.lossAndGradient(params.base, g.base, ws, rows: rows, scale: 1 / Float(rows), beta: 1, accumulate: false)
            // Both encoder layers took the sparse path (their scratch headers hold the rows).
            let took = model.encoder.compute.prefix(2).allSatisfy {
                ws.encoderBuffers.scratch[$0].assumingMemoryBound(to: Int64.self)[0] == Int64(rows)
            }
            return (loss, Array(UnsafeBufferPointer(start: g.base, count: model.parameterCount)), took)
        }
        let sparse = run(sparse: true), dense = run(sparse: false)
        #expect(sparse.tookSparse && !dense.tookSparse)
        #expect(abs(sparse.loss.bce - dense.loss.bce) < 1e-4 * abs(dense.loss.bce))
        #expect(abs(sparse.loss.kl - dense.loss.kl) < 1e-4 * max(1, abs(dense.loss.kl)))
        let e = Self.relativeError(sparse.gradient, dense.gradient)
        #expect(e < 1e-4, "gradient off by \(e)")
    }

    @Test("with sparse inputs turned off, backward never reuses what an earlier sparse forward left in the scratch")
    func offAfterOn() {
        let rows = 16, inFeatures = 120, outFeatures = 40
        let first = Problem(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, density: 0.1, seed: 1)
        let second = Problem(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, density: 0.1, seed: 2)
        var layout = ParameterLayout()
        let layer = Linear(inFeatures: inFeatures, outFeatures: outFeatures, name: "l", layout: &layout)
        var params = [Float](repeating: 0, count: layout.totalCount)
        var rng = SplitMix64(seed: 4)
        layer.initialize(&params, rng: &rng)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: layer.scratchBytes(capacity: rows), alignment: 64)
        defer { scratch.deallocate() }
        let ids = [Int32](repeating: 0, count: rows)
        var y = [Float](repeating: 0, count: rows * outFeatures)
        var grads = [Float](repeating: 0, count: layout.totalCount)
        params.withUnsafeBufferPointer { pp in
            grads.withUnsafeMutableBufferPointer { gp in
                for (problem, sparse) in [(first, true), (second, false)] {
                    var dy = problem.dy
                    let c = LayerContext(params: pp.baseAddress!, grads: gp.baseAddress!, mode: .training, ids: ids, labels: ids,
                                         capacity: rows, scratch: scratch, sparseInputs: sparse)
                    layer.forward(problem.x, &y, rows: rows, c)
                    layer.backward(problem.x, y, &dy, nil, rows: rows, c)
                }
            }
        }
        var reference = [Float](repeating: 0, count: layout.totalCount)
        layer.backward(params, grads: &reference, x: second.x, dy: second.dy, dx: nil, rows: rows, accumulate: false)
        #expect(Self.relativeError(grads, reference) < 1e-5)
    }
}
