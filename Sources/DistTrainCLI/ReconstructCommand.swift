import DistTrainIO
import ArgumentParser
import DistTrain
import Models

/// `disttrain reconstruct`: test images next to their reconstructions.
struct ReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Reconstruct the first test images: originals and their decoded posterior means (most likely categories for a categorical latent).",
        discussion: """
        Each of the first COUNT test images is encoded (with its own label for a CVAE) and its \
        posterior MEAN is decoded (with the same label). A categorical latent (Gumbel-softmax, \
        model.latent_kind "categorical") has no mean: its MOST LIKELY CATEGORY (argmax of the \
        encoder's logits) is decoded as a one-hot vector, so the reconstruction is deterministic \
        and shows the image of the cluster the digit was put in. A VQ-VAE (latent_kind "vq") \
        decodes its quantized codes: the nearest codebook vector at every position. Layout: pairs of ROWS. --cols images \
        per row (default 10, fewer when COUNT is smaller); each row of originals is followed \
        directly below by the row of their reconstructions, so original i and its \
        reconstruction are in the same column. PNG (30*cols+2) x (60*ceil(COUNT/cols)+2); \
        cells of an incomplete last pair of rows stay black; a grey line separates the pairs. The trainer's \
        writeReconstructionGrid draws the same layout.

          disttrain reconstruct --checkpoint runs/cvae/checkpoints/best --count 20 --out recon.png
        """
    )

    @OptionGroup var model: CheckpointOptions

    @Option(name: .long, help: "Number of test images, from the first.")
    var count: Int = 20

    @Option(name: .long, help: "Images per row; each row of originals is followed by its row of reconstructions.")
    var cols: Int = 10

    @OptionGroup var output: ImageOutputOptions

    @OptionGroup var data: DataOptions

    func validate() throws {
        if count < 1 || count > 10_000 { throw ValidationError("--count must be between 1 and 10000, got \(count)") }
        if cols < 1 || cols > 1000 { throw ValidationError("--cols must be between 1 and 1000, got \(cols)") }
    }

    func run() throws {
        guard Launch.isWriter else { return }  // single-process work: the other ranks of an mpirun job stop at once
        let trained = try model.load()
        let a = trained.architecture
        let files = data.files
        let n = count
        let shard = try files.test(classes: a.classes) { total in
            guard n <= total else { throw AnalysisError.countTooLarge(what: "--count", count: n, available: total, path: files.testImages) }
            return 0..<n
        }
        let runner = trained.runner
        let locals = Array(0..<n)
        let recon = try runner.reconstruct(shard, locals: locals)
        let originals = locals.flatMap { ModelRunner.pixels(shard, local: $0) }
        let c = ReconstructionGrid.columns(count: n, maxCols: cols)
        let (cells, rows) = ReconstructionGrid.cells(originals: originals, reconstructions: recon, count: n,
                                                     inputDim: a.inputDim, cols: c)
        try output.prepare()
        try AnalysisCLI.grid(rows: rows, cols: c, a).writePNG(cells, separatorsAfterRows: ReconstructionGrid.separators(rows: rows), to: output.out)
    }
}
