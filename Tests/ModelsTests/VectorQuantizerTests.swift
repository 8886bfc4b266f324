import Testing
@testable import Models

/// The vector-quantized latent: nearest codes, the loss value, and each gradient term (the
/// straight-through copy, the commitment pull on z_e, the codebook pull on e) against central
/// differences of the quantizer's own loss; then the whole VQ-VAE's wiring.
struct VectorQuantizerTests {
    /// A quantizer of K = 6 codes of D = 3 over S = 4 positions, with a spread-out codebook.
    static func quantizer(commitment: Float = 0.25) -> (VectorQuantizer, FloatBuffer) {
        var builder = LayerBuilder()
        _ = builder.parameters.reserve(5)  // an offset other than 0
        let q = VectorQuantizer(codes: 6, dimension: 3, positions: 4, commitment: commitment, builder: &builder)
        let params = FloatBuffer(count: builder.parameters.totalCount)
        var rng = SplitMix64(seed: 9)
        for i in 0..<(6 * 3) { params.base[q.codebookOffset + i] = rng.uniform(-1, 1) }
        return (q, params)
    }

    /// Runs the quantizer on `zE` [B, D, S]; returns (loss, codes, z_q).
    static func run(_ q: VectorQuantizer, _ params: FloatBuffer, _ zE: [Float], rows: Int,
                    counts: UnsafeMutablePointer<Double>? = nil) -> (Double, [Int32], [Float]) {
        var codes = [Int32](repeating: -1, count: rows * q.positions)
        var zQ = [Float](repeating: 0, count: rows * q.dimension * q.positions)
        let scratch = FloatBuffer(count: q.scratchCount)
        let loss = zE.withUnsafeBufferPointer { z in
            q.forward(codebook: params.base + q.codebookOffset, zE: z.baseAddress!, zQ: &zQ, zqStride: q.dimension * q.positions, codeIndices: &codes,
                      rows: rows, rowLoss: nil, counts: counts, scratch: scratch.base)
        }
        return (loss, codes, zQ)
    }

    @Test("each position takes its nearest code (brute force in float64); z_q holds it; loss = (1 + beta) |z_e - z_q|^2; counts tally")
    func nearestCode() {
        let (q, params) = Self.quantizer()
        let rows = 3, D = 3, S = 4
        let zE = (0..<(rows * D * S)).map { i in Float((i * 37) % 19) / 9 - 1 }
        let counts = UnsafeMutablePointer<Double>.allocate(capacity: 6)
        counts.initialize(repeating: 0, count: 6)
        defer { counts.deallocate() }
        let (loss, codes, zQ) = Self.run(q, params, zE, rows: rows, counts: counts)
        var expected = 0.0
        var tally = [Double](repeating: 0, count: 6)
        for r in 0..<rows {
            for s in 0..<S {
                var best = 0, bestDistance = Double.infinity
                for k in 0..<6 {
                    var d2 = 0.0
                    for d in 0..<D {
                        let diff = Double(zE[r * D * S + d * S + s]) - Double(params.base[q.codebookOffset + k * D + d])
                        d2 += diff * diff
                    }
                    if d2 < bestDistance { bestDistance = d2; best = k }
                }
                #expect(codes[r * S + s] == Int32(best), "row \(r) position \(s)")
                for d in 0..<D { #expect(zQ[r * D * S + d * S + s] == params.base[q.codebookOffset + best * D + d]) }
                expected += 1.25 * bestDistance
                tally[best] += 1
            }
        }
        #expect(abs(loss - expected) < 1e-5 * expected)
        #expect(Array(UnsafeBufferPointer(start: counts, count: 6)) == tally)
        #expect(Set(codes).count > 1, "the test should use more than one code")
    }

    @Test("gradients: dz_e = dz_q + weight * beta/(1+beta) * d(loss)/dz_e; d codebook = weight/(1+beta) * d(loss)/de (central differences)")
    func gradientTerms() {
        for commitment: Float in [0.25, 0] {
            let (q, params) = Self.quantizer(commitment: commitment)
            let rows = 2, D = 3, S = 4, n = rows * D * S
            let zE = (0..<n).map { i in Float((i * 53) % 23) / 11 - 1 }
            let dzQ = (0..<n).map { i in Float((i * 29) % 13) / 6 - 1 }
            let (_, codes, zQ) = Self.run(q, params, zE, rows: rows)
            let grads = FloatBuffer(count: params.count)
            var dzE = [Float](repeating: 0, count: n)
            let weight: Float = 0.75
            zE.withUnsafeBufferPointer { z in
                codes.withUnsafeBufferPointer { c in
                    q.backward(grads: grads.base, zE: z.baseAddress!, zQ: zQ, codeIndices: c.baseAddress!, dzQ: dzQ,
                               dzqStride: D * S, dzE: &dzE, rows: rows, weight: weight, accumulate: false)
                }
            }
            let h: Float = 1e-3
            // Commitment: the part of dz_e beyond the straight-through copy of dz_q.
            var z = zE
            for i in 0..<n {
                let saved = z[i]
                z[i] = saved + h; let (up, upCodes, _) = Self.run(q, params, z, rows: rows)
                z[i] = saved - h; let (down, downCodes, _) = Self.run(q, params, z, rows: rows)
                z[i] = saved
                #expect(upCodes == codes && downCodes == codes, "a step of h changed an assignment")
                let numeric = Double(weight) * Double(commitment) / Double(1 + commitment) * (up - down) / (2 * Double(h))
                let straightThrough = Double(dzQ[i])
                #expect(abs(Double(dzE[i]) - straightThrough - numeric) < 2e-3, "dz_e[\(i)], commitment \(commitment)")
                if commitment == 0 { #expect(dzE[i] == dzQ[i], "straight-through: dz_e is dz_q exactly") }
            }
            // Codebook: only the codebook term pulls e (toward the z_e assigned to it).
            var usedCodes = 0
            for i in 0..<(6 * D) {
                let o = q.codebookOffset + i
                let saved = params.base[o]
                params.base[o] = saved + h; let (up, _, _) = Self.run(q, params, zE, rows: rows)
                params.base[o] = saved - h; let (down, _, _) = Self.run(q, params, zE, rows: rows)
                params.base[o] = saved
                let numeric = Double(weight) / Double(1 + commitment) * (up - down) / (2 * Double(h))
                #expect(abs(Double(grads.base[o]) - numeric) < 2e-3, "codebook[\(i / D)][\(i % D)]")
                if grads.base[o] != 0 { usedCodes += 1 }
            }
            #expect(usedCodes > 0)
            // Accumulate adds to what is there.
            let before = grads.toArray()
            zE.withUnsafeBufferPointer { z in
                codes.withUnsafeBufferPointer { c in
                    q.backward(grads: grads.base, zE: z.baseAddress!, zQ: zQ, codeIndices: c.baseAddress!, dzQ: dzQ,
                               dzqStride: D * S, dzE: &dzE, rows: rows, weight: weight, accumulate: true)
                }
            }
            for i in 0..<(6 * D) { #expect(abs(grads.base[q.codebookOffset + i] - 2 * before[q.codebookOffset + i]) < 1e-6) }
        }
    }

    @Test("whole VQ-VAE: decoder gradients match central differences, the codebook's match its term, the encoder gets dz_q + commitment")
    func modelWiring() {
        let arch = SeedArchitectures.vqVAE001(width: 3, dimension: 2, codes: 7, side: 8)
        let model = VAE(arch)
        let q = model.quantizer!
        #expect(q.positions == 4 && arch.latentWidth == 8 && arch.decoderInputWidth == 8)
        let params = FloatBuffer(count: model.parameterCount)
        let grads = FloatBuffer(count: model.parameterCount)
        model.initialize(params.base, seed: 5)
        // Spread the codebook out (the seed's init is within +-1/K) so several codes are used.
        var rng = SplitMix64(seed: 4)
        for i in 0..<(q.codes * q.dimension) { params.base[q.codebookOffset + i] = rng.uniform(-0.5, 0.5) }
        let rows = 3
        let ws = GradientCheckTests.batch(arch, rows: rows, seed: 2, model: model)
        let scale: Float = 1.0 / 4, beta: Float = 1.5
        _ = model.lossAndGradient(params.base, grads.base, ws, rows: rows, scale: scale, beta: beta, accumulate: false)
        let codes = Array(UnsafeBufferPointer(start: ws.codeIndices, count: rows * q.positions))
        // Straight-through wiring: what reached the encoder is dz_q plus the commitment pull.
        let zE = Array(UnsafeBufferPointer(start: ws.heads.base, count: rows * arch.latentWidth))
        let dzE = Array(UnsafeBufferPointer(start: ws.dHeads.base, count: rows * arch.latentWidth))
        let dzQ = Array(UnsafeBufferPointer(start: ws.dDecoderInput.base, count: rows * arch.latentWidth))
        for r in 0..<rows {
            for d in 0..<q.dimension {
                for s in 0..<q.positions {
                    let i = r * arch.latentWidth + d * q.positions + s
                    let e = params.base[q.codebookOffset + Int(codes[r * q.positions + s]) * q.dimension + d]
                    #expect(abs(dzE[i] - dzQ[i] - scale * beta * 2 * q.commitment * (zE[i] - e)) < 1e-6)
                }
            }
        }
        let h: Float = 1e-3
        func central(_ i: Int, _ f: () -> Double) -> Double {
            let saved = params.base[i]
            params.base[i] = saved + h; let up = f()
            params.base[i] = saved - h; let down = f()
            params.base[i] = saved
            return (up - down) / (2 * Double(h))
        }
        var diff = 0.0, ref = 0.0
        for slot in model.layout.exported where slot.name.hasPrefix("decoder.") {
            for k in 0..<slot.count {
                let numeric = central(slot.offset + k) {
                    Double(scale) * model.loss(params.base, ws, rows: rows, mode: .training).total(beta: Double(beta))
                }
                let g = Double(grads.base[slot.offset + k])
                diff += (numeric - g) * (numeric - g); ref += numeric * numeric
            }
        }
        #expect(ref > 0 && (diff / ref).squareRoot() < 1e-2, "decoder relative error \((diff / ref).squareRoot())")
        // The codebook's gradient is the codebook term's alone: weight * 2 (e - z_e) per assignment.
        diff = 0; ref = 0
        for i in q.codebookOffset..<(q.codebookOffset + q.codes * q.dimension) {
            let numeric = central(i) {
                _ = model.loss(params.base, ws, rows: rows, mode: .training)
                return Double(scale * beta) / Double(1 + q.commitment) * Double((0..<rows).reduce(Float(0)) { $0 + ws.rowKL.base[$1] })
            }
            let g = Double(grads.base[i])
            diff += (numeric - g) * (numeric - g); ref += numeric * numeric
        }
        #expect(ref > 0 && (diff / ref).squareRoot() < 1e-2, "codebook relative error \((diff / ref).squareRoot())")
        // The encoder backpropagates exactly the dz_e above: d/dtheta of sum(dz_e * z_e(theta)).
        diff = 0; ref = 0
        for slot in model.layout.exported where slot.name.hasPrefix("encoder.") {
            for k in 0..<slot.count {
                let numeric = central(slot.offset + k) {
                    model.encode(params.base, ws, rows: rows)
                    return (0..<dzE.count).reduce(0.0) { $0 + Double(dzE[$1]) * Double(ws.heads.base[$1]) }
                }
                let g = Double(grads.base[slot.offset + k])
                diff += (numeric - g) * (numeric - g); ref += numeric * numeric
            }
        }
        #expect(ref > 0 && (diff / ref).squareRoot() < 1e-2, "encoder relative error \((diff / ref).squareRoot())")
        #expect(model.backwardBoundaries.contains(q.codebookOffset))
    }

    @Test("EMA codebook: lives in the state buffer, no gradient; one step from N = m = 0 sets each used code to the mean of its z_e, keeps unused ones")
    func emaStep() {
        var arch = SeedArchitectures.vqVAE001(width: 3, dimension: 2, codes: 7, side: 8)
        arch.codebookEMA = 0.9
        let model = VAE(arch)
        let q = model.quantizer!
        #expect(q.usesEMA && model.layout.slot(named: VectorQuantizer.tensorName) == nil)
        #expect(model.stateLayout.slot(named: VectorQuantizer.tensorName) != nil && model.stateLayout.slot(named: "quantizer.cluster_size") != nil)
        let params = FloatBuffer(count: model.parameterCount), grads = FloatBuffer(count: model.parameterCount)
        let state = FloatBuffer(count: model.stateCount)
        model.initialize(params.base, seed: 5, state: state.base)
        for i in 0..<(q.codes * q.dimension) { state.base[q.codebookOffset + i] = Float(i % 5) / 4 - 0.5 }
        let before = state.toArray()
        let rows = 3
        let ws = GradientCheckTests.batch(arch, rows: rows, seed: 2, model: model)
        _ = model.lossAndGradient(params.base, grads.base, ws, rows: rows, scale: 0.25, beta: 1, accumulate: false, state: state.base)
        let codes = Array(UnsafeBufferPointer(start: ws.codeIndices, count: rows * q.positions))
        var n = [Double](repeating: 0, count: q.codes), sums = [Double](repeating: 0, count: q.codes * q.dimension)
        for r in 0..<rows {
            for s in 0..<q.positions {
                let k = Int(codes[r * q.positions + s])
                n[k] += 1
                for d in 0..<q.dimension { sums[k * q.dimension + d] += Double(ws.heads.base[r * arch.latentWidth + d * q.positions + s]) }
            }
        }
        #expect(n.filter { $0 > 0 }.count >= 1)
        for k in 0..<q.codes {
            #expect(abs(Double(state.base[q.clusterSizeOffset + k]) - 0.1 * n[k]) < 1e-5)
            for d in 0..<q.dimension {
                let e = Double(state.base[q.codebookOffset + k * q.dimension + d])
                if n[k] > 0 {
                    #expect(abs(e - sums[k * q.dimension + d] / n[k]) < 1e-5, "code \(k)")
                } else {
                    #expect(Float(e) == before[q.codebookOffset + k * q.dimension + d], "unused code \(k) must keep its vector")
                }
            }
        }
        // The gradient path reports one boundary fewer: no codebook in the parameters.
        var gradientArch = arch
        gradientArch.codebookEMA = 0
        #expect(model.backwardBoundaries.count == VAE(gradientArch).backwardBoundaries.count - 1)
    }
}
