import DistTrain
import Foundation
import Testing

/// ThreadPlan: threads per rank, and whether they have cores to themselves (the pool's idle
/// workers spin between passes only then).
struct ThreadPlanTests {
    let online = ProcessInfo.processInfo.activeProcessorCount

    @Test("threads: a positive request wins; otherwise this process's CPUs shared by the host's ranks")
    func threads() {
        #expect(ThreadPlan.threads(requested: 3, ranksOnHost: 8) == 3)
        let allowed = ThreadPlan.allowedCPUs()
        #expect(allowed >= 1 && allowed <= online)
        #expect(ThreadPlan.threads(requested: 0, ranksOnHost: 1) == allowed)
        #expect(ThreadPlan.threads(requested: 0, ranksOnHost: 1000) == 1, "never fewer than one thread")
    }

    @Test("fitsCores: one thread always fits; more threads than CPUs, or ranks x threads beyond them, do not")
    func fitsCores() {
        #expect(ThreadPlan.fitsCores(threads: 1, ranksOnHost: 1))
        #expect(!ThreadPlan.fitsCores(threads: online + 1, ranksOnHost: 1))
        #expect(!ThreadPlan.fitsCores(threads: 2, ranksOnHost: online), "ranks x threads beyond the host's CPUs")
        #expect(ThreadPlan.fitsCores(threads: ThreadPlan.threads(requested: 0, ranksOnHost: 1), ranksOnHost: 1),
                "the default plan of one rank fits")
    }
}
