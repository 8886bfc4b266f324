import DistTrainIO
/// The alpha-beta cost model of a ring allreduce, fitted to measured allreduce times.
///
/// A ring allreduce of n bytes over p ranks runs p - 1 reduce-scatter steps and p - 1 allgather
/// steps, each sending n / p bytes to the next rank, so it takes
///
///     T(n, p) = 2 (p - 1) alpha + 2 (p - 1) / p * n * beta
///
/// with alpha the latency of one step (seconds) and beta the time per byte (seconds per byte,
/// the inverse of the link bandwidth).
public struct AllreduceCostModel: Equatable, Sendable {
    /// Latency of one ring step, seconds.
    public var alpha: Double
    /// Transfer time per byte, seconds (1 / bandwidth).
    public var beta: Double

    /// A model with latency `alpha` seconds per step and `beta` seconds per byte.
    public init(alpha: Double, beta: Double) {
        self.alpha = alpha
        self.beta = beta
    }

    /// A network of the given per-message latency (microseconds) and bandwidth (GB/s, 10^9 bytes).
    public init(latencyMicroseconds: Double, bandwidthGBps: Double) {
        self.init(alpha: latencyMicroseconds * 1e-6, beta: 1 / (bandwidthGBps * 1e9))
    }

    /// alpha in microseconds.
    public var latencyMicroseconds: Double { alpha * 1e6 }
    /// 1 / beta in GB/s (10^9 bytes per second); infinite when beta is 0.
    public var bandwidthGBps: Double { 1 / beta / 1e9 }

    /// Predicted seconds of one allreduce of `bytes` bytes over `ranks` ranks (0 for one rank).
    public func seconds(bytes: Double, ranks: Int) -> Double {
        let (latency, volume) = AllreduceCostModel.terms(bytes: bytes, ranks: ranks)
        return alpha * latency + beta * volume
    }

    /// The coefficients of alpha and beta in T(n, p): 2 (p - 1) and 2 (p - 1) / p * n.
    static func terms(bytes: Double, ranks: Int) -> (Double, Double) {
        let p = Double(max(ranks, 1))
        return (2 * (p - 1), 2 * (p - 1) / p * bytes)
    }
}

/// One measured allreduce: `bytes` summed in place over `ranks` ranks took `seconds`.
public struct AllreduceTiming: Equatable, Sendable {
    public var ranks: Int
    public var bytes: Double
    public var seconds: Double

    public init(ranks: Int, bytes: Double, seconds: Double) {
        self.ranks = ranks
        self.bytes = bytes
        self.seconds = seconds
    }
}

/// Why allreduce timings could not be read or fitted.
public enum AllreduceModelError: Error, Equatable, CustomStringConvertible {
    /// The fit needs at least two distinct message sizes to separate latency from bandwidth.
    case tooFewSizes(distinct: Int)
    /// A timing the model cannot use: fewer than 2 ranks, a non-positive size or time.
    case invalidTiming(AllreduceTiming)
    /// The timings do not determine alpha and beta (numerically singular least squares).
    case degenerate
    /// A JSON line of `disttrain bench-allreduce` output that could not be read.
    case badRecord(line: Int, reason: String)

    public var description: String {
        switch self {
        case let .tooFewSizes(n):
            return "the alpha-beta fit needs timings of at least 2 distinct message sizes, got \(n)"
        case let .invalidTiming(t):
            return "unusable allreduce timing (ranks \(t.ranks), bytes \(t.bytes), seconds \(t.seconds)): the fit needs at least 2 ranks and positive sizes and times"
        case .degenerate:
            return "the allreduce timings do not determine latency and bandwidth (singular fit)"
        case let .badRecord(line, reason):
            return "allreduce timings, line \(line): \(reason)"
        }
    }
}

/// The least-squares fit of `AllreduceCostModel` to timings.
public struct AllreduceFit: Equatable, Sendable {
    /// The fitted alpha and beta (both constrained to be non-negative).
    public var model: AllreduceCostModel
    /// Timings fitted.
    public var count: Int
    /// The distinct rank counts among them.
    public var rankCounts: [Int]
    /// Root mean square of (predicted - measured) / measured: how well a ring model describes them.
    public var rmsRelativeError: Double

    /// Fits alpha and beta by least squares on relative residuals, sum(((T(n, p) - t) / t)^2),
    /// so that microsecond-scale small messages weigh as much as millisecond-scale large ones.
    /// Both are constrained to be non-negative (a negative latency or bandwidth means noise, not
    /// physics). Every timing must have at least 2 ranks and positive bytes and seconds, and
    /// there must be at least 2 distinct sizes.
    public static func fit(_ timings: [AllreduceTiming]) throws(AllreduceModelError) -> AllreduceFit {
        for t in timings where t.ranks < 2 || !(t.bytes > 0) || !(t.seconds > 0) || !t.bytes.isFinite || !t.seconds.isFinite {
            throw .invalidTiming(t)
        }
        let sizes = Set(timings.map(\.bytes)).count
        guard sizes >= 2 else { throw .tooFewSizes(distinct: sizes) }
        // Rows scaled by 1 / t: minimize |A x - 1|^2 with A = [x1 / t, x2 / t].
        let rows = timings.map { t -> (Double, Double) in
            let (a, b) = AllreduceCostModel.terms(bytes: t.bytes, ranks: t.ranks)
            return (a / t.seconds, b / t.seconds)
        }
        var s11 = 0.0, s12 = 0.0, s22 = 0.0, r1 = 0.0, r2 = 0.0
        for (a, b) in rows {
            s11 += a * a; s12 += a * b; s22 += b * b; r1 += a; r2 += b
        }
        func objective(_ alpha: Double, _ beta: Double) -> Double {
            rows.reduce(0) { let e = alpha * $1.0 + beta * $1.1 - 1; return $0 + e * e }
        }
        // Candidates of the two-variable non-negative least squares: the unconstrained optimum
        // when it is feasible, and each variable alone with the other at 0.
        var candidates = [(r1 / s11, 0.0), (0.0, r2 / s22)]
        let det = s11 * s22 - s12 * s12
        guard det > 1e-12 * s11 * s22 else { throw .degenerate }
        let alpha = (r1 * s22 - r2 * s12) / det, beta = (r2 * s11 - r1 * s12) / det
        if alpha >= 0 && beta >= 0 { candidates.append((alpha, beta)) }
        let best = candidates.min { objective($0.0, $0.1) < objective($1.0, $1.1) }!
        return AllreduceFit(model: AllreduceCostModel(alpha: best.0, beta: best.1), count: timings.count,
                            rankCounts: Set(timings.map(\.ranks)).sorted(),
                            rmsRelativeError: (objective(best.0, best.1) / Double(rows.count)).squareRoot())
    }
}

/// The repeated timings of one message size in `disttrain bench-allreduce`.
public struct AllreduceSeries: Equatable, Sendable {
    public var ranks: Int
    public var bytes: Int
    /// Seconds of each timed iteration (each already the maximum over ranks).
    public var seconds: [Double]

    public init(ranks: Int, bytes: Int, seconds: [Double]) {
        self.ranks = ranks
        self.bytes = bytes
        self.seconds = seconds
    }

    /// The median iteration (the mean of the two middle ones for an even count); 0 when empty.
    public var median: Double {
        let s = seconds.sorted(), n = s.count
        if n == 0 { return 0 }
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    /// The fastest iteration; 0 when empty.
    public var min: Double { seconds.min() ?? 0 }

    /// One JSON line: ranks, bytes, median_s, min_s, iterations, plus `extra` fields.
    public func jsonLine(extra: [(String, JSON)] = []) -> String {
        JSON.object([("ranks", .number(Double(ranks))), ("bytes", .number(Double(bytes))),
                     ("median_s", .number(median)), ("min_s", .number(min)),
                     ("iterations", .number(Double(seconds.count)))] + extra).serialized
    }

    /// Reads the timings (median seconds) from JSON lines written by `jsonLine`; blank lines
    /// are skipped, and lines of one rank (no communication) are left out.
    public static func timings(jsonLines text: String) throws(AllreduceModelError) -> [AllreduceTiming] {
        var out: [AllreduceTiming] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy(\.isWhitespace) { continue }
            let json: JSON
            do { json = try JSON.parse(String(line)) } catch { throw .badRecord(line: i + 1, reason: "\(error)") }
            func number(_ key: String) throws(AllreduceModelError) -> Double {
                guard case let .number(v)? = json[key] else { throw .badRecord(line: i + 1, reason: "no number \"\(key)\"") }
                return v
            }
            guard let ranks = Int(exactly: try number("ranks")) else { throw .badRecord(line: i + 1, reason: "\"ranks\" is not a whole number") }
            let t = AllreduceTiming(ranks: ranks, bytes: try number("bytes"), seconds: try number("median_s"))
            if t.ranks > 1 { out.append(t) }
        }
        return out
    }

    /// Message sizes in bytes: `minBytes`, then times `factor` while at most `maxBytes`, then
    /// `maxBytes` itself and every size of `extra`; each rounded down to whole floats (at least
    /// one), sorted, without repeats.
    public static func sizes(minBytes: Int, maxBytes: Int, factor: Int, extra: [Int] = []) -> [Int] {
        var all = extra + [maxBytes]
        var n = minBytes
        while n <= maxBytes {
            all.append(n)
            if n > maxBytes / Swift.max(factor, 2) { break }
            n *= Swift.max(factor, 2)
        }
        return Set(all.map { Swift.max($0 / 4, 1) * 4 }).sorted()
    }
}
