import ArgumentParser
import DistTrain
#if canImport(Glibc)
import Glibc
#endif

/// `disttrain`: data-parallel VAE training over MPI.
@main
struct DistTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disttrain",
        abstract: "Data-parallel training of (conditional) variational autoencoders on MNIST over MPI.",
        discussion: """
        Start it under mpirun for a data-parallel job, or on its own for a single-rank run with \
        the same outputs:

          mpirun -n 4 disttrain --config configs/cvae.json
          disttrain --config configs/cvae.json --epochs 1 --out runs/debug

        `train` is the default subcommand, so `disttrain --config FILE` trains. Rank 0 writes the \
        run directory: metrics.jsonl, grids/epoch-NNN.png and checkpoints/.

        Exit statuses: \(ExitStatus.summary).
        """,
        version: "0.1.0",
        subcommands: [TrainCommand.self, GenerateCommand.self, StyleCommand.self, ReconstructCommand.self, AnimateCommand.self,
                      BenchAllreduceCommand.self,
                      EvalCommand.self, ManifoldCommand.self, ConfigReferenceCommand.self, VerifyCommand.self],
        defaultSubcommand: TrainCommand.self
    )

    /// Parses and runs, turning every error into one line on stderr and a non-zero exit.
    static func main() {
        let command: ParsableCommand
        do {
            // No argument may hold a control character: paths would be cut at a NUL or
            // unprintable in error lines (C strings cannot hold NUL, but the rest get through).
            for (i, argument) in CommandLine.arguments.dropFirst().enumerated() {
                try PathCheck.check(argument, field: "argument \(i + 1)")
            }
            command = try parseAsRoot()
        } catch let e as PathCheck.ControlCharacter {
            if Launch.rank == 0 { Report.error(e.description) }
            Glibc.exit(64)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version: printed once, not once per rank.
                if Launch.isWriter { print(fullMessage(for: error)) }
                Glibc.exit(0)
            }
            if Launch.isWriter { Report.error(message(for: error) + " (see 'disttrain --help')") }
            Glibc.exit(code.rawValue)
        }
        do {
            var c = command
            try c.run()
            Glibc.exit(0)
        } catch let e as PeerFailure {
            Glibc.exit(e.status.rawValue)  // the failing rank printed the reason
        } catch let e as StopRequested {
            if Launch.rank == 0 { fputs("disttrain: \(e)\n", stderr) }
            Glibc.exit(e.exitStatus.rawValue)
        } catch let e as SharedFailure {
            if Launch.isWriter { Report.error(e.message) }
            Glibc.exit(1)
        } catch let e as ConfigError where e.isOptionError {
            // A flag out of its config field's limits: a usage error, as when parsing failed.
            if Launch.isWriter { Report.error("\(e) (see 'disttrain --help')") }
            Glibc.exit(ExitCode.validationFailure.rawValue)
        } catch let e as ExitCode {
            Glibc.exit(e.rawValue)
        } catch where exitCode(for: error) == .success {
            // `disttrain help ...` and subcommand --help arrive here as a "help requested" error.
            if Launch.isWriter { print(fullMessage(for: error)) }
            Glibc.exit(0)
        } catch {
            Report.error(Launch.worldSize > 1 ? "rank \(Launch.rank): \(error)" : "\(error)")
            Glibc.exit(ExitStatus.of(error).rawValue)
        }
    }
}

/// What the launcher (mpirun, srun) told this process, read before MPI starts.
enum Launch {
    static let rank: Int = env(["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"]) ?? 0
    static let worldSize: Int = env(["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"]) ?? 1
    /// True on the writer, rank 0: the only rank that writes files and prints (before MPI
    /// starts; afterwards `Communicator.isWriter` says the same).
    static var isWriter: Bool { rank == 0 }

    static func env(_ names: [String]) -> Int? {
        for n in names { if let v = getenv(n), let i = Int(String(cString: v)) { return i } }
        return nil
    }
}

enum Report {
    /// One line on stderr.
    static func error(_ message: String) {
        // One complete line whatever the message holds: newlines become "; ", other control
        // characters (a NUL would end fputs's string early) are written as \u{XX}.
        var oneLine = ""
        for s in message.split(separator: "\n").joined(separator: "; ").unicodeScalars {
            if s.value < 0x20 || s.value == 0x7F {
                let d = String(s.value, radix: 16, uppercase: true)
                oneLine += "\\u{" + String(repeating: "0", count: max(0, 4 - d.count)) + d + "}"
            } else {
                oneLine.unicodeScalars.append(s)
            }
        }
        fputs("disttrain: error: \(oneLine)\n", stderr)
    }
}

extension ConfigError {
    /// True for a command-line option's value out of its field's limits.
    var isOptionError: Bool {
        if case .invalidOption = self { return true }
        return false
    }
}
