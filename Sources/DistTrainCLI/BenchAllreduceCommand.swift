import DistTrainIO
import ArgumentParser
import DistTrain
import Models
#if canImport(Glibc)
import Glibc
#endif

/// `disttrain bench-allreduce`: times in-place float32 sum allreduces over the job's ranks, or
/// fits the ring alpha-beta model to earlier timings.
struct BenchAllreduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-allreduce",
        abstract: "Time in-place float32 sum allreduces over the job's ranks, or fit the ring alpha-beta model to such timings.",
        discussion: """
        Measuring (under mpirun): for each message size, from --min-bytes times --factor up to \
        --max-bytes, plus --max-bytes itself and the seed model's gradient (its parameter count \
        x 4 bytes, or the model of --config), every rank runs --warmup untimed and --iterations \
        timed allreduces of the same buffer (the trainer's call: one in-place MPI_Allreduce, \
        MPI_SUM, MPI_FLOAT). Each iteration starts after a barrier; its time is the maximum over \
        ranks. First, one allreduce of rank-numbered values is checked against the exact sum. \
        Rank 0 prints one JSON line per size, smallest first, with the fields ranks, bytes, \
        median_s and min_s (seconds, over the timed iterations), iterations, floats, and \
        model_gradient (true for the model's gradient size). A world of one (no mpirun) \
        communicates nothing and times only the call.

        Fitting (--fit FILE, repeatable; rank 0 only, no communication): reads such lines, from \
        runs at 2 or more rank counts for a meaningful fit, leaves out 1-rank lines, and fits \
        T(n, p) = 2(p-1) alpha + 2(p-1)/p n beta to the median times by least squares on \
        relative residuals, alpha and beta non-negative. Prints one JSON line: alpha_us, \
        beta_gbps (1 / beta in 10^9 bytes/s), alpha_s, beta_s_per_byte, timings, ranks, \
        rms_relative_error.

          mpirun -n 2 disttrain bench-allreduce > ar2.jsonl
          mpirun -n 4 --oversubscribe disttrain bench-allreduce > ar4.jsonl
          disttrain bench-allreduce --fit ar2.jsonl --fit ar4.jsonl
        """
    )

    @Option(name: .long, help: "Smallest message in bytes (rounded down to whole floats).")
    var minBytes: Int = 1024

    @Option(name: .long, help: "Largest message in bytes (always measured; at most 1 GiB).")
    var maxBytes: Int = 8 << 20

    @Option(name: .long, help: "Each message size is this many times the previous one (at least 2).")
    var factor: Int = 4

    @Option(name: .long, help: "Timed allreduces per message size.")
    var iterations: Int = 30

    @Option(name: .long, help: "Untimed allreduces per message size before the timed ones.")
    var warmup: Int = 5

    @Option(name: .long, help: ArgumentHelp("Training config whose model's gradient size is also measured (default: the seed CVAE).", valueName: "file.json"))
    var config: String?

    @Flag(name: .long, help: "Do not add the model's gradient size to the message sizes.")
    var noModelSize = false

    @Option(name: .long, help: ArgumentHelp("Fit the alpha-beta model to the JSON lines of this file instead of measuring (repeatable).", valueName: "file.jsonl"))
    var fit: [String] = []

    func validate() throws {
        if minBytes < 4 { throw ValidationError("--min-bytes must be at least 4 (one float), got \(minBytes)") }
        if maxBytes < minBytes { throw ValidationError("--max-bytes (\(maxBytes)) must be at least --min-bytes (\(minBytes))") }
        if maxBytes > 1 << 30 { throw ValidationError("--max-bytes must be at most 1 GiB (1073741824), got \(maxBytes)") }
        if factor < 2 { throw ValidationError("--factor must be at least 2, got \(factor)") }
        if iterations < 1 || iterations > 100_000 { throw ValidationError("--iterations must be between 1 and 100000, got \(iterations)") }
        if warmup < 0 || warmup > 100_000 { throw ValidationError("--warmup must be between 0 and 100000, got \(warmup)") }
    }

    func run() throws {
        if !fit.isEmpty {
            guard Launch.isWriter else { return }
            print(try fitFiles())
            return
        }
        try measure(CommunicatorFactory.world())
    }

    /// Reads every --fit file and returns the fit as one JSON line.
    func fitFiles() throws -> String {
        var timings: [AllreduceTiming] = []
        for path in fit {
            do {
                timings += try AllreduceSeries.timings(jsonLines: try FileBytes.readString(path, limit: 64 << 20))
            } catch let e as AllreduceModelError {
                throw BenchAllreduceError.unreadable(path: path, reason: e.description)
            }
        }
        let f = try AllreduceFit.fit(timings)
        return JSON.object([
            ("alpha_us", .number(f.model.latencyMicroseconds)), ("beta_gbps", .number(f.model.bandwidthGBps)),
            ("alpha_s", .number(f.model.alpha)), ("beta_s_per_byte", .number(f.model.beta)),
            ("timings", .number(Double(f.count))), ("ranks", .array(f.rankCounts.map { .number(Double($0)) })),
            ("rms_relative_error", .number(f.rmsRelativeError)),
        ]).serialized
    }

    /// The gradient size in bytes of the seed CVAE, or of --config's model.
    /// A gradient larger than this rank can hold is refused before the buffer is allocated.
    func modelGradientBytes(ranksOnHost: Int) throws -> Int {
        let architecture = try config.map { try TrainConfig.load(path: $0).architecture(inputDim: 784) } ?? VAEArchitecture()
        // Layer stacks (conv, BatchNorm) are sized by building the model; the MLP form from its widths.
        guard MemoryBudget.isMLP(architecture) else { return VAE(architecture).parameterCount * MemoryLayout<Float>.size }
        let bytes = MemoryBudget.parameterCount(architecture) * Double(MemoryLayout<Float>.size)
        let available = MemoryBudget.availableBytes(ranksOnHost: ranksOnHost)
        guard bytes <= available else {
            throw MemoryBudget.TooLarge(what: "\(config ?? "the seed config"): the model's gradient", parameters: bytes / 4,
                                        neededBytes: bytes, availableBytes: available)
        }
        return Int(bytes)
    }

    func measure(_ comm: Communicator) throws {
        let modelBytes = try comm.collectively { try noModelSize ? nil : modelGradientBytes(ranksOnHost: comm.localSize) }
        // Every rank must time the same sizes the same number of times, or some would wait in
        // an allreduce the others never start.
        try comm.agree(on: [
            ("--min-bytes", String(minBytes)), ("--max-bytes", String(maxBytes)), ("--factor", String(factor)),
            ("--iterations", String(iterations)), ("--warmup", String(warmup)),
            ("the model gradient size (--config, --no-model-size)", modelBytes.map { "\($0) bytes" } ?? "none"),
        ], what: "what to measure")
        let sizes = AllreduceSeries.sizes(minBytes: minBytes, maxBytes: maxBytes, factor: factor, extra: modelBytes.map { [$0] } ?? [])
        let capacity = sizes.max()! / 4
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        if comm.isWriter {
            let note = comm.size == 1 ? " (a world of one: nothing is communicated; start it under mpirun -n 2 or more)" : ""
            fputs("bench-allreduce: \(comm.size) rank\(comm.size == 1 ? "" : "s"), \(sizes.count) sizes, \(warmup) warmup + \(iterations) timed allreduces each\(note)\n", stderr)
        }
        try comm.collectively { try verifySum(comm, buffer, count: capacity) }
        buffer.initialize(repeating: 0, count: capacity)  // sums of zeros stay zero, never overflow
        for bytes in sizes {
            let series = time(comm, buffer, count: bytes / 4)
            if comm.isWriter {
                print(series.jsonLine(extra: [("floats", .number(Double(bytes / 4))), ("model_gradient", .bool(bytes == modelBytes))]))
                fflush(stdout)
            }
        }
    }

    /// Times `warmup + iterations` allreduces of `count` floats; each timed one is the maximum
    /// over ranks of the time from leaving a barrier to the end of the call.
    func time(_ comm: Communicator, _ buffer: UnsafeMutablePointer<Float>, count: Int) -> AllreduceSeries {
        var seconds: [Double] = []
        seconds.reserveCapacity(iterations)
        for i in 0..<(warmup + iterations) {
            comm.barrier()
            let start = Clock.now()
            comm.allreduceSum(buffer, count: count)
            let mine = Int64(((Clock.now() - start) * 1e9).rounded())
            let slowest = comm.allreduceMax(mine)
            if i >= warmup { seconds.append(Double(slowest) / 1e9) }
        }
        return AllreduceSeries(ranks: comm.size, bytes: count * 4, seconds: seconds)
    }

    /// One allreduce of (rank + 1) everywhere must give 1 + 2 + ... + size exactly.
    func verifySum(_ comm: Communicator, _ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        buffer.initialize(repeating: Float(comm.rank + 1), count: count)
        comm.allreduceSum(buffer, count: count)
        let expected = Float(comm.size * (comm.size + 1) / 2)
        if let i = (0..<count).first(where: { buffer[$0] != expected }) {
            throw BenchAllreduceError.wrongSum(index: i, got: buffer[i], expected: expected)
        }
    }
}

/// A benchmark that could not run or whose input could not be used.
enum BenchAllreduceError: Error, CustomStringConvertible {
    case wrongSum(index: Int, got: Float, expected: Float)
    case unreadable(path: String, reason: String)

    var description: String {
        switch self {
        case let .wrongSum(index, got, expected):
            return "allreduce check failed: element \(index) is \(got), expected \(expected) (the sum of rank + 1 over the ranks)"
        case let .unreadable(path, reason):
            return "\(path): \(reason)"
        }
    }
}
