#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The threads that run a rank's elementwise passes (bias + activation, losses, the latent
/// sample, Adam) next to OpenBLAS's, so that with N BLAS threads every phase of a step uses N.
///
/// Created once at setup (`WorkerPool.shared.setThreads`). A pass is a C function pointer (a
/// `@convention(c)` closure, which captures nothing) and a pointer to the caller's context
/// struct on its stack: no heap allocation per pass (a Swift closure parked for the workers
/// would need `withoutActuallyEscaping`, which allocates a 32-byte box per pass).
///
/// Chunk numbers are claimed from one atomic word that also holds the pass's generation, so a
/// worker that wakes late claims nothing of a later pass; the caller claims chunks too and
/// waits only for chunks a worker actually took, never for a worker that has not woken (on a
/// loaded machine a sleeping worker would otherwise cost a whole scheduler slice per pass).
/// Which thread runs which chunk varies, so callers make each chunk's work depend only on its
/// number: the same chunk boundaries for any thread count, every reduction summed afterwards in
/// a fixed order. Results are bitwise identical for any N, and to the single-threaded loops.
///
/// One pass at a time: a caller that finds the pool busy (another thread's pass, as with the
/// in-process ranks of LocalCommunicator or tests running in parallel) runs its chunks itself.
public final class WorkerPool: @unchecked Sendable {
    /// A chunk of a pass: `(context, chunk number)`.
    public typealias Kernel = @convention(c) (UnsafeMutableRawPointer, Int) -> Void

    /// The process's pool; one thread (the caller's) until `setThreads`.
    public static let shared = WorkerPool()

    /// Threads a pass runs on, the caller's included.
    public private(set) var threads = 1
    /// Passes in which a worker ran at least one chunk: tests check the pool was really used.
    public var passesOnWorkers: Int { workerPasses.load(ordering: .relaxed) }

    private let workerPasses = Atomic<Int>(0)
    /// False makes the caller leave every chunk to the workers (tests: so that a pass is
    /// certain to run on other threads).
    var callerTakesChunks = true
    /// Held by the thread whose pass is handed out (or that is resizing the pool).
    private let busy = Atomic<Bool>(false)
    /// The current pass's generation; workers wait for it to move.
    private let generation = Atomic<Int>(0)
    /// generation (high 32 bits) | next chunk to claim (low 32 bits).
    private let claim = Atomic<UInt64>(0)
    /// Chunks of the current pass finished, and those finished by workers.
    private let completed = Atomic<Int>(0)
    private let completedByWorkers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let exitedWorkers = Atomic<Int>(0)
    private let startedWorkers = Atomic<Int>(0)
    /// The current pass, written under `mutex`.
    private var kernel: Kernel?
    private var context: UnsafeMutableRawPointer?
    private var chunkCount = 0
    /// Guards the current pass and lets idle workers sleep (allocated once: pthread objects must not move).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Yields an idle worker spins through before it sleeps. A layer's passes come back to back,
    /// and a sleeping worker wakes tens of microseconds after the broadcast, by which time the
    /// caller has often taken most chunks itself: spinning through `idleSpins` yields (a few
    /// hundred microseconds) made a 1 x 2 training step of the seed CVAE faster in 3 of 4
    /// comparisons of 6-8 interleaved runs on the idle 2-core VM (median step -7.5%, -8.6%,
    /// -12%; once equal; 2000 yields no better than 300). But a spinning worker takes a core
    /// from anyone else who needs it (measured on a loaded 2-core machine with 2000 yields:
    /// forward and backward 5x slower), so it is 0 (sleep at once) unless the setup knows the
    /// rank's threads have cores to themselves (`TrainingSetup`, `ThreadPlan.fitsCores`: no more
    /// threads than the default plan's share of the CPUs). Since the caller never waits for a
    /// worker that has not woken, a sleeping worker costs a pass nothing but its help.
    public var spinsBeforeSleep = 0
    /// The spins of a worker with a core of its own.
    public static let idleSpins = 300

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// Uses `n` threads (the caller plus n - 1 workers) from now on. Call at setup; it
    /// allocates (thread creation).
    public func setThreads(_ n: Int) {
        let n = max(1, n)
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { sched_yield() }
        defer { busy.store(false, ordering: .releasing) }
        guard n != threads else { return }
        stopWorkers()
        threads = n
        startedWorkers.store(0, ordering: .relaxed)
        for _ in 1..<n {
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                Unmanaged<WorkerPool>.fromOpaque(raw!).takeRetainedValue().workerLoop()
                return nil
            }, Unmanaged.passRetained(self).toOpaque())
            precondition(created == 0, "cannot start a worker thread (pthread_create: \(created))")
            pthread_detach(thread)
        }
        while startedWorkers.load(ordering: .acquiring) < n - 1 { sched_yield() }
    }

    /// Runs `kernel(context, chunk)` for every chunk in 0..<chunks over the pool's threads and
    /// returns when all are done. Chunks run in no particular order and on any thread.
    public func run(chunks: Int, context: UnsafeMutableRawPointer, kernel: Kernel) {
        if threads == 1 || chunks <= 1
            || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for chunk in 0..<chunks { kernel(context, chunk) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        if threads == 1 {  // resized between the check above and taking the pool
            for chunk in 0..<chunks { kernel(context, chunk) }
            return
        }
        pthread_mutex_lock(mutex)
        let g = generation.load(ordering: .relaxed) &+ 1
        self.kernel = kernel
        self.context = context
        chunkCount = chunks
        completed.store(0, ordering: .relaxed)
        completedByWorkers.store(0, ordering: .relaxed)
        claim.store(UInt64(UInt32(truncatingIfNeeded: g)) << 32, ordering: .releasing)
        generation.store(g, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        if callerTakesChunks { work(generation: g, chunks: chunks, context: context, kernel: kernel, isWorker: false) }
        var spins = 0
        while completed.load(ordering: .acquiring) < chunks {
            spins += 1
            if spins > 64 { sched_yield() }
        }
        if completedByWorkers.load(ordering: .relaxed) > 0 { workerPasses.add(1, ordering: .relaxed) }
    }

    /// `run` with a context struct of the caller's (passed by address for the pass's duration).
    @inline(__always)
    public func run<Context>(chunks: Int, _ context: inout Context, _ kernel: Kernel) {
        withUnsafeMutablePointer(to: &context) { run(chunks: chunks, context: UnsafeMutableRawPointer($0), kernel: kernel) }
    }

    /// Chunk `chunk` of `count` items split into chunks of `size` (the last one shorter): the
    /// boundaries depend on `size` only, never on the threads.
    @inline(__always)
    public static func range(_ chunk: Int, count: Int, size: Int) -> Range<Int> {
        let start = chunk * size
        return start..<min(count, start + size)
    }

    /// Chunks of `count` items in chunks of `size`.
    @inline(__always)
    public static func chunks(count: Int, size: Int) -> Int { (count + size - 1) / size }

    @inline(__always)
    private func work(generation g: Int, chunks: Int, context: UnsafeMutableRawPointer, kernel: Kernel, isWorker: Bool) {
        let tag = UInt64(UInt32(truncatingIfNeeded: g)) << 32
        while true {
            let v = claim.load(ordering: .acquiring)
            if v & 0xFFFF_FFFF_0000_0000 != tag || Int(v & 0xFFFF_FFFF) >= chunks { return }
            guard claim.compareExchange(expected: v, desired: v + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            kernel(context, Int(v & 0xFFFF_FFFF))
            if isWorker { completedByWorkers.add(1, ordering: .relaxed) }
            completed.add(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        var seen = generation.load(ordering: .acquiring)
        startedWorkers.add(1, ordering: .releasing)
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && !stopping.load(ordering: .acquiring) {
                spins += 1
                if spins < spinsBeforeSleep { sched_yield(); continue }
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .acquiring) == seen && !stopping.load(ordering: .acquiring) {
                    pthread_cond_wait(wake, mutex)
                }
                pthread_mutex_unlock(mutex)
            }
            if stopping.load(ordering: .acquiring) {
                exitedWorkers.add(1, ordering: .releasing)
                return
            }
            // A consistent snapshot of the newest pass; if the caller has moved on, the claim
            // word's generation no longer matches and this worker takes nothing.
            pthread_mutex_lock(mutex)
            let g = generation.load(ordering: .relaxed), k = kernel, c = context, n = chunkCount
            pthread_mutex_unlock(mutex)
            seen = g
            if let k, let c { work(generation: g, chunks: n, context: c, kernel: k, isWorker: true) }
        }
    }

    /// Stops the current workers and waits until they have exited.
    private func stopWorkers() {
        guard threads > 1 else { return }
        exitedWorkers.store(0, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        stopping.store(true, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        while exitedWorkers.load(ordering: .acquiring) < threads - 1 { sched_yield() }
        stopping.store(false, ordering: .releasing)
        threads = 1
    }
}
