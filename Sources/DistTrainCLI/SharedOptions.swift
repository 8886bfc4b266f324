import ArgumentParser
import DistTrain

// Options that several subcommands take, declared once each and included with @OptionGroup.

/// `--checkpoint`: the trained model of generate, style, reconstruct, manifold and eval.
struct CheckpointOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Checkpoint to load: a checkpoint directory (holding model.safetensors), a model.safetensors file, a pointer file such as RUN/checkpoints/best, or a run directory (its latest checkpoint). The model is rebuilt from the file's metadata.",
        valueName: "dir"))
    var checkpoint: String

    /// The model and its parameters.
    func load() throws -> TrainedModel { try TrainedModel(checkpoint: checkpoint) }
}

/// `--data-dir`: where style, reconstruct, manifold and eval read MNIST.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp(
        "Directory holding the MNIST IDX files (train-/t10k-images-idx3-ubyte and -labels-idx1-ubyte, gzip or raw).",
        valueName: "dir"))
    var dataDir: String = "data/mnist"

    /// The four IDX files in that directory.
    var files: MNISTFiles { MNISTFiles(dir: dataDir) }
}

/// `--out`: the PNG file generate, style and reconstruct write.
struct ImageOutputOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Output PNG file (its directory is created).", valueName: "file.png"))
    var out: String

    func validate() throws {
        if out.isEmpty { throw ValidationError("--out must not be empty") }
    }

    /// Creates the directory that will hold the file.
    func prepare() throws { try AnalysisCLI.prepareOutput(out) }
}

/// `--threads` of the commands without a config (eval), with the limits of runtime.blas_threads.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "OpenBLAS threads per rank (0: CPUs of this host / ranks on this host).")
    var threads: Int = 0

    func validate() throws {
        do { try TrainConfig.check(ConfigOverride("--threads", \.runtime.blasThreads, threads)) } catch {
            throw ValidationError("\(error)")
        }
    }
}
