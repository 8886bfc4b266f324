import DistTrainIO
import ArgumentParser
import DistTrain
import Models

/// `disttrain style`: style transfer with a conditional model.
struct StyleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "style",
        abstract: "Style transfer: encode real digits with their own label, re-draw them as every digit 0-9.",
        discussion: """
        Each source image is encoded with its own label; its posterior MEAN z (no sampling) is \
        decoded with every label 0-9, so the re-drawn digits keep the source's style (slant, \
        stroke width). Needs a model whose decoder sees the label (conditioning both or decoder); \
        any other model is refused. With a categorical latent the code decoded is the source's \
        most likely category (one-hot), not a mean.

        --test-index I: one row of 11 cells from test image I: the original, then the re-drawings \
        as labels 0, 1, ..., 9 (a grey line separates the original). PNG 332 x 32.

        --from-label L [--count N]: the first N (default 10) images of label L in the TRAINING \
        set, one column each. Row 0: the originals; a grey line; then rows 1-10: the \
        re-drawings as labels 0, 1, ..., 9 (row 1 + k is label k, so the row of label L shows \
        reconstructions). PNG (30*N+2) x 332. --from-label 7 is seed 004's table.

          disttrain style --checkpoint runs/cvae/checkpoints/best --test-index 48 --out style-48.png
          disttrain style --checkpoint runs/cvae/checkpoints/best --from-label 7 --out sevens.png
        """
    )

    @OptionGroup var model: CheckpointOptions

    @Option(name: .customLong("test-index"), help: ArgumentHelp("Index of the test image to re-draw (0-9999): one row, the original then labels 0-9.", valueName: "index"))
    var testIndex: Int?

    @Option(name: .customLong("from-label"), help: ArgumentHelp("Instead: re-draw the first --count training images of this label; originals on top, then one row per label 0-9.", valueName: "label"))
    var fromLabel: Int?

    @Option(name: .long, help: "With --from-label: how many source images (columns).")
    var count: Int = 10

    @OptionGroup var output: ImageOutputOptions

    @OptionGroup var data: DataOptions

    func validate() throws {
        if (testIndex == nil) == (fromLabel == nil) { throw ValidationError("pass exactly one of --test-index and --from-label") }
        if let i = testIndex, i < 0 { throw ValidationError("--test-index must be non-negative, got \(i)") }
        if let l = fromLabel, l < 0 { throw ValidationError("--from-label must be non-negative, got \(l)") }
        if count < 1 || count > 1000 { throw ValidationError("--count must be between 1 and 1000, got \(count)") }
    }

    func run() throws {
        guard Launch.isWriter else { return }  // single-process work: the other ranks of an mpirun job stop at once
        let trained = try model.load()
        let a = trained.architecture
        guard a.conditionsDecoder else { throw AnalysisError.unconditional(path: trained.path, what: "style transfer") }
        let runner = trained.runner
        let files = data.files
        if let index = testIndex {
            let shard = try files.test(classes: a.classes) { total in
                guard index < total else { throw AnalysisError.indexOutOfRange(what: "--test-index", index: index, count: total, path: files.testImages) }
                return index..<(index + 1)
            }
            let cells = ModelRunner.pixels(shard, local: 0) + (try runner.restyle(shard, locals: [0]))
            try output.prepare()
            try AnalysisCLI.grid(rows: 1, cols: 1 + a.classes, a)
                .writePNG(cells, separatorsAfterRows: [], separatorsAfterColumns: [0], to: output.out)
        } else if let label = fromLabel {
            try AnalysisCLI.check(label: label, a)
            let labels = try IDX.readLabels(path: files.trainLabels, classes: a.classes).labels
            let sources = Array(labels.indices.filter { Int(labels[$0]) == label }.prefix(count))
            guard sources.count == count else {
                throw AnalysisError.tooFewWithLabel(label: label, found: sources.count, wanted: count, path: files.trainLabels)
            }
            let shard = try files.train(classes: a.classes) { _ in 0..<(sources.last! + 1) }
            let restyled = try runner.restyle(shard, locals: sources)
            var cells = sources.flatMap { ModelRunner.pixels(shard, local: $0) }
            for k in 0..<a.classes {
                for i in 0..<count {
                    let start = (i * a.classes + k) * a.inputDim
                    cells.append(contentsOf: restyled[start..<(start + a.inputDim)])
                }
            }
            try output.prepare()
            try AnalysisCLI.grid(rows: 1 + a.classes, cols: count, a)
                .writePNG(cells, separatorsAfterRows: [0], to: output.out)
        }
    }
}
