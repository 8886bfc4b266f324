import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// What a trace event shows, one name per phase of a step and of an epoch end.
public enum TracePhase: UInt8, CaseIterable, Sendable {
    case data, forward, backward, allreduceWait, optimizer, allgather, bucket, evaluation, checkpoint
    /// A gradient bucket's reduce-scatter (sharded optimizer), on the buckets' track.
    case bucketReduceScatter
    /// ZeRO-1 with overlap: one parameter range's allgather, from its start after Adam to its
    /// observed completion (in the next step), on the gathers' track; and forward's wait for one.
    case parameterGather, allgatherWait

    public var name: String {
        switch self {
        case .data: return "batch filling"
        case .forward: return "forward"
        case .backward: return "backward"
        case .allreduceWait: return "allreduce wait"
        case .optimizer: return "optimizer"
        case .allgather: return "parameter allgather"
        case .bucket: return "bucket allreduce"
        case .evaluation: return "evaluation"
        case .checkpoint: return "checkpoint write"
        case .bucketReduceScatter: return "bucket reduce-scatter"
        case .parameterGather: return "parameter range allgather"
        case .allgatherWait: return "allgather wait"
        }
    }

    /// Whether the event is one gradient bucket's reduction (the "gradient buckets" track).
    public var isBucket: Bool { self == .bucket || self == .bucketReduceScatter }

    /// The track (trace thread) of the event: 0 the step's phases (forward's allgather waits
    /// nest inside its forward), 1 the gradient buckets, 2 the parameter ranges' allgathers.
    public var track: Int { isBucket ? 1 : self == .parameterGather ? 2 : 0 }
}

/// Records the phases of the steps `steps` (1-based global step numbers) into a buffer
/// allocated up front, so recording allocates nothing; at the end every rank's events are
/// gathered on rank 0 and written as Chrome trace-event JSON (chrome://tracing, Perfetto).
///
/// Track layout: one process per rank ("rank N"), thread 0 the step's phases in sequence,
/// thread 1 the gradient buckets' reductions from start to observed completion (they overlap
/// backward), thread 2 (ZeRO-1 with overlap) the parameter ranges' allgathers from their start
/// after Adam to observed completion in the next forward. Times are microseconds since a barrier at the recorder's creation, so ranks on
/// one host share the origin (CLOCK_MONOTONIC); across hosts the origin is the barrier's exit.
public final class TraceRecorder {
    struct Event {
        var phase: UInt8
        var bucket: Int32
        var step: Int32
        var start: Double
        var end: Double
    }

    public let steps: ClosedRange<Int>
    public let capacity: Int
    public private(set) var count = 0
    /// Events that did not fit (the buffer is never grown during training).
    public private(set) var dropped = 0
    /// True while the step in progress is inside `steps`.
    public private(set) var active = false
    private var step: Int32 = 0
    private let events: UnsafeMutablePointer<Event>
    let origin: Double

    /// `eventsPerStep` bounds the events of one step (phases, buckets); epoch-end events come on top.
    public init(steps: ClosedRange<Int>, eventsPerStep: Int, tracedSteps: Int, epochEnds: Int, comm: Communicator) {
        self.steps = steps
        capacity = max(16, min(tracedSteps * eventsPerStep + epochEnds * 2 + 16, 1 << 21))
        events = .allocate(capacity: capacity)
        comm.barrier()
        origin = Clock.now()
    }

    deinit { events.deallocate() }

    /// Marks the start of global step `number` (1-based).
    @inline(__always)
    public func beginStep(_ number: Int) {
        active = steps.contains(number)
        step = Int32(truncatingIfNeeded: number)
    }

    /// Ends the step: later events (evaluation, checkpoint) are kept only if `number` is in range.
    @inline(__always)
    public func endSteps() { active = false }

    /// Records `phase` from `start` to `end` (Clock.now() seconds) if the current step is traced.
    @inline(__always)
    public func record(_ phase: TracePhase, start: Double, end: Double, bucket: Int = -1) {
        guard active else { return }
        append(phase, start: start, end: end, bucket: bucket)
    }

    /// Records an epoch-end event (evaluation, checkpoint) after global step `number`.
    public func recordEpochEnd(_ phase: TracePhase, start: Double, end: Double, afterStep number: Int) {
        guard steps.contains(number) else { return }
        step = Int32(truncatingIfNeeded: number)
        append(phase, start: start, end: end, bucket: -1)
    }

    @inline(__always)
    private func append(_ phase: TracePhase, start: Double, end: Double, bucket: Int) {
        guard count < capacity else { dropped += 1; return }
        events[count] = Event(phase: phase.rawValue, bucket: Int32(truncatingIfNeeded: bucket), step: step, start: start, end: end)
        count += 1
    }

    /// This rank's events as bytes: per event phase (1), bucket (4), step (4), start and
    /// duration in microseconds (8 + 8), little-endian.
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count * 25)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        for i in 0..<count {
            let e = events[i]
            out.append(e.phase)
            put(e.bucket)
            put(e.step)
            put(((e.start - origin) * 1e6).bitPattern)
            put(((e.end - e.start) * 1e6).bitPattern)
        }
        return out
    }

    /// Decoded events of one rank: (phase, bucket, step, start us, duration us).
    static func decode(_ bytes: [UInt8]) -> [(TracePhase, Int, Int, Double, Double)] {
        var out: [(TracePhase, Int, Int, Double, Double)] = []
        var i = 0
        func get<T: FixedWidthInteger>(_: T.Type) -> T {
            var v: T = 0
            withUnsafeMutableBytes(of: &v) { d in for k in 0..<MemoryLayout<T>.size { d[k] = bytes[i + k] } }
            i += MemoryLayout<T>.size
            return T(littleEndian: v)
        }
        while i + 25 <= bytes.count {
            let phase = TracePhase(rawValue: bytes[i]) ?? .data
            i += 1
            let bucket = Int(get(Int32.self)), step = Int(get(Int32.self))
            let start = Double(bitPattern: get(UInt64.self)), dur = Double(bitPattern: get(UInt64.self))
            out.append((phase, bucket, step, start, dur))
        }
        return out
    }

    /// Collective: gathers every rank's events; rank 0 writes the JSON file to `path`.
    public func write(to path: String, comm: Communicator) throws {
        let all = comm.allgather(encoded())
        let lost = comm.sum([Double(dropped)])[0]
        try comm.onWriter {
            try AtomicFile.write(Array(TraceRecorder.json(ranks: all, dropped: Int(lost)).utf8), to: path)
        }
    }

    /// The trace-event JSON of every rank's encoded events.
    static func json(ranks: [[UInt8]], dropped: Int) -> String {
        var s = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"disttrain\",\"dropped_events\":\(dropped)},\"traceEvents\":[\n"
        var first = true
        func add(_ line: String) {
            if !first { s += ",\n" }
            first = false
            s += line
        }
        for (rank, bytes) in ranks.enumerated() {
            add("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":\(rank),\"tid\":0,\"args\":{\"name\":\"rank \(rank)\"}}")
            add("{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":\(rank),\"tid\":0,\"args\":{\"sort_index\":\(rank)}}")
            add("{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":\(rank),\"tid\":0,\"args\":{\"name\":\"step phases\"}}")
            add("{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":\(rank),\"tid\":1,\"args\":{\"name\":\"gradient buckets\"}}")
            let events = decode(bytes)
            if events.contains(where: { $0.0 == .parameterGather }) {
                add("{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":\(rank),\"tid\":2,\"args\":{\"name\":\"parameter allgathers\"}}")
            }
            for (phase, bucket, step, start, dur) in events {
                let tid = phase.track
                let name = phase.isBucket ? "bucket \(bucket) \(phase == .bucket ? "allreduce" : "reduce-scatter")"
                         : phase == .parameterGather ? "range \(bucket) allgather" : phase.name
                var args = "\"step\":\(step)"
                if bucket >= 0 { args += ",\"\(phase == .parameterGather ? "range" : "bucket")\":\(bucket)" }
                add("{\"ph\":\"X\",\"name\":\"\(name)\",\"cat\":\"\(tid != 0 ? "comm" : "step")\",\"pid\":\(rank),\"tid\":\(tid),\"ts\":\(JSON.format((start * 1000).rounded() / 1000)),\"dur\":\(JSON.format((max(dur, 0) * 1000).rounded() / 1000)),\"args\":{\(args)}}")
            }
        }
        s += "\n]}\n"
        return s
    }
}

/// `--trace-steps A-B` (or a single step A).
public func parseStepRange(_ text: String) -> ClosedRange<Int>? {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    if parts.count == 1, let a = Int(parts[0]), a >= 1 { return a...a }
    guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 1, b >= a else { return nil }
    return a...b
}
