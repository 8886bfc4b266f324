import MPIShim
#if canImport(Glibc)
import Glibc
#endif

/// The MPI world. MPI may be initialized once per process, so there is one shared instance;
/// MPI_Finalize runs at process exit.
public final class MPICommunicator: Communicator {
    /// Initializes MPI on first use (MPI_THREAD_SERIALIZED: callers may be on any thread, one at a time).
    public static let world = MPICommunicator()

    public let rank: Int
    public let size: Int
    public let localSize: Int
    private var requests: [MPI_Request?]
    private var pending = 0
    private let comm: MPI_Comm

    private init() {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, shim_thread_serialized(), &provided)
        comm = shim_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        var local: MPI_Comm? = shim_comm_null()
        MPI_Comm_split_type(comm, shim_comm_type_shared(), r, shim_info_null(), &local)
        var ls: Int32 = 1
        MPI_Comm_size(local, &ls)
        MPI_Comm_free(&local)
        localSize = Int(ls)
        requests = Array(repeating: shim_request_null(), count: 64)
        atexit {
            var finalized: Int32 = 0
            MPI_Finalized(&finalized)
            if finalized == 0 { MPI_Finalize() }
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        if size == 1 || count == 0 { return }
        MPI_Allreduce(shim_in_place(), buffer, Int32(count), shim_float(), shim_op_sum(), comm)
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        if size == 1 || count == 0 { return }
        MPI_Allreduce(shim_in_place(), buffer, Int32(count), shim_double(), shim_op_sum(), comm)
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        if size == 1 || count == 0 { return }
        precondition(pending < requests.count, "too many outstanding reductions")
        let slot = pending
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Iallreduce(shim_in_place(), buffer, Int32(count), shim_float(), shim_op_sum(), comm, r.baseAddress! + slot)
        }
        pending += 1
    }

    public func startAllreduceSumBF16(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) {
        if size == 1 || count == 0 { return }
        precondition(pending < requests.count, "too many outstanding reductions")
        let slot = pending
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Iallreduce(shim_in_place(), buffer, Int32(count), shim_uint16(), MPICommunicator.bf16Sum, comm, r.baseAddress! + slot)
        }
        pending += 1
    }

    /// MPI_SUM for bfloat16 stored as UInt16: widen to float32, add, round to nearest even.
    static let bf16Sum: MPI_Op? = {
        var op: MPI_Op? = nil
        MPI_Op_create({ input, inout_, length, _ in
            guard let input, let inout_, let length else { return }
            let a = input.assumingMemoryBound(to: UInt16.self)
            let b = inout_.assumingMemoryBound(to: UInt16.self)
            for i in 0..<Int(length.pointee) {
                b[i] = BFloat16.round(BFloat16.widen(a[i]) + BFloat16.widen(b[i]))
            }
        }, 1, &op)
        return op
    }()

    public func progress() {
        if pending == 0 { return }
        var done: Int32 = 0
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Testall(Int32(pending), r.baseAddress!, &done, shim_statuses_ignore())
        }
    }

    public func waitAll() {
        if pending == 0 { return }
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Waitall(Int32(pending), r.baseAddress!, shim_statuses_ignore())
        }
        pending = 0
    }

    public func allreduceMax(_ value: Int64) -> Int64 { reduce(value, shim_op_max()) }
    public func allreduceMin(_ value: Int64) -> Int64 { reduce(value, shim_op_min()) }

    private func reduce(_ value: Int64, _ op: MPI_Op) -> Int64 {
        if size == 1 { return value }
        var v = value
        MPI_Allreduce(shim_in_place(), &v, 1, shim_int64(), op, comm)
        return v
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        if size == 1 || count == 0 { return }
        // MPI counts are Int32: send large buffers in chunks.
        var done = 0
        while done < count {
            let n = min(count - done, 1 << 30)
            MPI_Bcast(buffer + done, Int32(n), shim_float(), Int32(root), comm)
            done += n
        }
    }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        if size == 1 { return [bytes] }
        let n = Int(allreduceMax(Int64(bytes.count)))
        var send = bytes + [UInt8](repeating: 0, count: n - bytes.count)
        var lengths = [Int64](repeating: 0, count: size)
        var mine = Int64(bytes.count)
        MPI_Allgather(&mine, 1, shim_int64(), &lengths, 1, shim_int64(), comm)
        var recv = [UInt8](repeating: 0, count: n * size)
        if n > 0 {
            MPI_Allgather(&send, Int32(n), shim_byte(), &recv, Int32(n), shim_byte(), comm)
        }
        return (0..<size).map { Array(recv[($0 * n)..<($0 * n + Int(lengths[$0]))]) }
    }

    public func barrier() {
        if size > 1 { MPI_Barrier(comm) }
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }
}
