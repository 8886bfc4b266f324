import Models
import Testing
@testable import DistTrain

// BFloat16.round against an independent reference: of the two bfloat16 values around x (its
// top 16 bits, and the next one away from zero), take the nearer in exact Double arithmetic;
// on a tie the one whose last bit is 0. Special values by their IEEE 754 bit patterns.

/// The correctly rounded (nearest, ties to even) bfloat16 bits of a finite Float, by comparing
/// distances in Double (exact for every float32 and bfloat16 value).
func referenceBF16(_ x: Float) -> UInt16 {
    let low = UInt16(x.bitPattern >> 16)              // truncated: toward zero
    let high = low &+ 1                                // next bfloat16 away from zero (may be inf)
    let d0 = abs(Double(x) - Double(BFloat16.widen(low)))
    // Past the largest finite bfloat16 the next value is 2^128 with an unbounded exponent
    // (IEEE 754: overflow when the exact result rounds to it), which the bits encode as infinity.
    let next = BFloat16.widen(high).isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(BFloat16.widen(high))
    let d1 = abs(next - Double(x))
    if d0 < d1 { return low }
    if d1 < d0 { return high }
    return low & 1 == 0 ? low : high
}

@Suite("BFloat16: round to nearest, ties to even; NaN, infinity, subnormals")
struct BFloat16Tests {
    @Test("every bfloat16 value converts back to itself exactly")
    func exactValuesRoundTrip() {
        var mismatches: [UInt16] = []
        for h in 0...UInt16.max {
            let x = BFloat16.widen(h)
            if x.isNaN { continue }
            if BFloat16.round(x) != h { mismatches.append(h) }
        }
        #expect(mismatches.isEmpty, "not preserved: \(mismatches.prefix(8).map { String($0, radix: 16) })")
    }

    @Test("ties go to the even neighbour, in both directions and for both signs")
    func tiesToEven() {
        // 1 + 2^-8 lies halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81, odd): down.
        #expect(BFloat16.round(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        // 1 + 3 * 2^-8 lies halfway between 0x3F81 (odd) and 0x3F82 (even): up.
        #expect(BFloat16.round(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(BFloat16.round(Float(bitPattern: 0xBF80_8000)) == 0xBF80)
        #expect(BFloat16.round(Float(bitPattern: 0xBF81_8000)) == 0xBF82)
        // Just off the tie: the nearer neighbour.
        #expect(BFloat16.round(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(BFloat16.round(Float(bitPattern: 0x3F80_7FFF)) == 0x3F80)
        #expect(BFloat16.round(Float(bitPattern: 0x3F81_7FFF)) == 0x3F81)
        // A tie that carries into the exponent: 2 - 2^-8 is halfway between 0x3FFF and 2.0.
        #expect(BFloat16.round(Float(bitPattern: 0x3FFF_8000)) == 0x4000)
        #expect(BFloat16.widen(0x4000) == 2)
    }

    @Test("nearest value on 200,000 pseudo-random floats of every magnitude, matches the reference")
    func matchesReference() {
        var rng = SplitMix64(seed: 42)
        var bad: [(UInt32, UInt16, UInt16)] = []
        var ties = 0
        for i in 0..<200_000 {
            var bits = UInt32(truncatingIfNeeded: rng.next())
            if i % 4 == 0 { bits = (bits & 0xFFFF_0000) | 0x8000 }         // a quarter exact ties
            let x = Float(bitPattern: bits)
            if !x.isFinite { continue }
            if bits & 0xFFFF == 0x8000 { ties += 1 }
            let got = BFloat16.round(x), want = referenceBF16(x)
            if got != want { bad.append((bits, got, want)) }
        }
        #expect(ties > 40_000)
        #expect(bad.isEmpty, "\(bad.count) wrong, e.g. \(bad.prefix(4).map { "0x\(String($0.0, radix: 16)): 0x\(String($0.1, radix: 16)), want 0x\(String($0.2, radix: 16))" })")
    }

    @Test("the rounding error is at most half a bfloat16 ulp (2^(e-8) for x in [2^e, 2^(e+1)))")
    func errorBound() {
        var rng = SplitMix64(seed: 7)
        var beyond: [Float] = []
        for _ in 0..<50_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x7EFF_FFFF)  // finite, below 2^126
            guard x.isNormal else { continue }
            let error = abs(Double(BFloat16.widen(BFloat16.round(x))) - Double(x))
            let halfULP = Double(sign: .plus, exponent: Int(x.exponent) - 8, significand: 1)
            if error > halfULP { beyond.append(x) }
        }
        #expect(beyond.isEmpty, "\(beyond.count) values rounded by more than half an ulp, e.g. \(beyond.prefix(4))")
    }

    @Test("NaN stays NaN, quiet or signalling, whatever its payload and sign")
    func nan() {
        // 0x7F80_0001: a signalling NaN whose payload is only in the low 16 bits; its top half
        // alone (0x7F80) would be infinity.
        for bits in [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FBF_FFFF, 0x7FFF_FFFF, 0x7F80_8000] as [UInt32] {
            let x = Float(bitPattern: bits)
            #expect(x.isNaN)
            let h = BFloat16.round(x)
            #expect(BFloat16.widen(h).isNaN, "0x\(String(bits, radix: 16)) -> 0x\(String(h, radix: 16))")
            #expect(h & 0x8000 == UInt16(bits >> 16) & 0x8000, "sign kept")
        }
    }

    @Test("infinities stay infinite; overflow past the largest bfloat16 rounds to infinity")
    func infinity() {
        #expect(BFloat16.round(.infinity) == 0x7F80)
        #expect(BFloat16.round(-.infinity) == 0xFF80)
        // The largest finite bfloat16 is 0x7F7F; floats beyond its halfway point to 2^128 overflow.
        #expect(BFloat16.round(Float.greatestFiniteMagnitude) == 0x7F80)
        #expect(BFloat16.round(-Float.greatestFiniteMagnitude) == 0xFF80)
        #expect(BFloat16.round(Float(bitPattern: 0x7F7F_7FFF)) == 0x7F7F)
        #expect(BFloat16.round(Float(bitPattern: 0x7F7F_8000)) == 0x7F80)  // tie, 0x7F7F is odd
    }

    @Test("zeros and subnormals: signed zero kept, subnormals rounded like normals")
    func subnormals() {
        #expect(BFloat16.round(0) == 0x0000)
        #expect(BFloat16.round(-0.0) == 0x8000)
        // The smallest float32 subnormal is far below half the smallest bfloat16 subnormal (2^-133).
        #expect(BFloat16.round(.leastNonzeroMagnitude) == 0x0000)
        #expect(BFloat16.round(-.leastNonzeroMagnitude) == 0x8000)
        #expect(BFloat16.round(Float(bitPattern: 0x0000_8000)) == 0x0000)  // tie with 0: even
        #expect(BFloat16.round(Float(bitPattern: 0x0000_8001)) == 0x0001)
        #expect(BFloat16.round(Float(bitPattern: 0x0001_8000)) == 0x0002)  // tie, 0x0001 odd: up
        #expect(BFloat16.round(Float(bitPattern: 0x0001_7FFF)) == 0x0001)
        // The largest float32 subnormal rounds up to the smallest normal.
        #expect(BFloat16.round(Float(bitPattern: 0x007F_FFFF)) == 0x0080)
        #expect(BFloat16.widen(0x0080) == Float.leastNormalMagnitude)
        #expect(BFloat16.widen(0x0001) == Float(bitPattern: 0x0001_0000) && BFloat16.widen(0x0001).isSubnormal)
    }
}
