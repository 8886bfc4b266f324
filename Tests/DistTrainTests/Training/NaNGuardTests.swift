import Foundation
import Testing
@testable import DistTrain

// Part of the MPI suite (an extension of MPITests, so `--filter MPITests` under mpirun runs it
// on 2 and 4 ranks, serialized with the suite's other collectives).
extension MPITests {
    @Test("a NaN in one rank's gradient stops every rank at the same step, before the update")
    func nanGuardStopsEveryRankAtTheSameStep() throws {
        let dir = Support.sharedTempDir("nan-guard")
        defer { if comm.isWriter { try? FileManager.default.removeItem(atPath: dir) } }
        var config = Support.smallConfig(out: dir)
        config.training.maxSteps = 12
        config.output.checkpointEverySteps = 4
        config.output.gridEvery = 0
        var options = TrainOptions()
        options.printEpochs = false
        options.tensorboard = false
        // The last rank's local gradient gets a NaN while computing global step 7 (0-based 6).
        let poisonedStep = 6
        options.poisonGradient = (rank: comm.size - 1, step: poisonedStep)
        let trainer = try Trainer(config: config, comm: comm, options: options, logger: quiet)
        var message = ""
        do {
            try trainer.fit()
            Issue.record("rank \(comm.rank): training finished despite the NaN")
        } catch let e as SharedFailure {
            message = e.message
        } catch {
            Issue.record("rank \(comm.rank): expected the shared NaN failure, got \(error)")
        }
        #expect(message.contains("non-finite") && message.contains("at step \(poisonedStep + 1) "),
                "rank \(comm.rank): \(message)")

        // Every rank reports the same stop: step count, Adam's count, the parameters.
        let checksum = Numerics.checksum(trainer.params.base, count: trainer.params.count)
        let mine = "\(trainer.state.globalStep) \(trainer.adam.step) \(checksum) \(message)"
        let all = comm.allgather(Array(mine.utf8)).map { String(decoding: $0, as: UTF8.self) }
        #expect(Set(all).count == 1, "ranks stopped differently: \(all)")
        #expect(trainer.state.globalStep == poisonedStep, "the poisoned step was not applied")
        #expect(trainer.adam.step == poisonedStep)
        #expect(Numerics.allFinite(trainer.params.base, count: trainer.params.count))
        // The last checkpoint is the one before the NaN (step 4), not a later one.
        if comm.isWriter { #expect(RunDirectory(dir).pointer("latest") == RunDirectory.checkpointName(step: 4)) }
    }
}
