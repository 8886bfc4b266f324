import DistTrainIO
import ArgumentParser
import DistTrain
import Models

/// `disttrain generate`: samples from the prior, decoded with a chosen label, as a PNG grid.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate digits from a checkpoint: z ~ N(0, I) decoded with a chosen label (or each category of a categorical latent), as a PNG grid.",
        discussion: """
        --label L: COUNT images of label L, --cols per row (row-major, the last row padded with \
        black). The draws are repeatable: draw i depends only on --seed and i, so the same seed \
        gives the same images, and a larger --count only adds images.

        --label all: the trainer's grid (RUN/grids/epoch-NNN.png): one row per label 0-9, one \
        column per latent draw (--cols of them), z shared down a column, so a column is one \
        handwriting style across all digits. With the run's training seed (--seed, default 0) \
        it reproduces the trainer's grid exactly; --count is ignored.

        An unconditional model (conditioning "none") ignores --label. Cells are 28x28 with 2 \
        black pixels around and between them: the PNG is 30*cols+2 wide and 30*rows+2 high.

        A categorical latent (model.latent_kind "categorical", e.g. configs/gumbel-vae.json) has \
        a uniform prior over its K categories and no noise to draw: each category decodes to \
        one image. The grid has ONE ROW PER CATEGORY 0..K-1, and one column, or, when the \
        decoder also sees the label, one column per label 0-9 (row c, column y decodes \
        [onehot(c) | onehot(y)]): PNG 32 x (30*K+2), or (30*classes+2) x (30*K+2). There, \
        --label C selects CATEGORY C (one row) and --label all (the default) draws every \
        category; --count, --cols and --seed are not used.

          disttrain generate --checkpoint runs/cvae/checkpoints/best --label 5 --count 100 --out fives.png
          disttrain generate --checkpoint runs/gumbel-vae/checkpoints/best --out categories.png
        """
    )

    @OptionGroup var model: CheckpointOptions

    @Option(name: .long, help: ArgumentHelp("Label to draw (0-9), or 'all' for the label grid. Ignored by an unconditional model. For a categorical latent: the category to decode (0..K-1), or 'all' (default) for one row per category.", valueName: "label|all"))
    var label: LabelChoice?

    @Option(name: .long, help: "Number of images (default 100; ignored with --label all).")
    var count: Int?

    @OptionGroup var output: ImageOutputOptions

    @Option(name: .long, help: "Seed of the latent draws.")
    var seed: Int = 0

    @Option(name: .long, help: "Images per row (with --label all: latent draws, i.e. columns).")
    var cols: Int = 10

    func validate() throws {
        if let c = count, c < 1 || c > 100_000 { throw ValidationError("--count must be between 1 and 100000, got \(c)") }
        if cols < 1 || cols > 1000 { throw ValidationError("--cols must be between 1 and 1000, got \(cols)") }
        if seed < 0 { throw ValidationError("--seed must be non-negative, got \(seed)") }
    }

    func run() throws {
        guard Launch.isWriter else { return }  // single-process work: the other ranks of an mpirun job stop at once
        let trained = try model.load()
        let a = trained.architecture
        if a.latentKind == .vectorQuantized {
            throw AnalysisError.vectorQuantized(path: trained.path, what: "generating", codes: a.codebookSize)
        }
        let runner = trained.runner
        if a.latentKind == .categorical { return try writeCategories(runner, a) }
        var choice = label
        if !a.conditionsDecoder {
            if label != nil { AnalysisCLI.note("the model is unconditional (conditioning none): --label ignored") }
            choice = nil
        } else if choice == nil {
            throw AnalysisCommandError.needsLabel(classes: a.classes)
        }
        if case let .one(l)? = choice { try AnalysisCLI.check(label: l, a) }
        try output.prepare()
        switch choice {
        case .all?:
            if count != nil { AnalysisCLI.note("--count is ignored with --label all (the grid has \(a.classes) rows of --cols \(cols) draws)") }
            let cells = Generator(model: trained.model, params: trained.params.base, state: trained.state.base).labelGrid(cols: cols, seed: UInt64(seed))
            try AnalysisCLI.grid(rows: a.classes, cols: cols, a).writePNG(cells, to: output.out)
        case let .one(l)?:
            try writeSamples(runner, label: l, a)
        case nil:
            try writeSamples(runner, label: 0, a)
        }
    }

    /// A categorical latent: one row per category (or the one chosen with --label).
    func writeCategories(_ runner: ModelRunner, _ a: VAEArchitecture) throws {
        var categories = Array(0..<a.latent)
        if case let .one(c)? = label {
            guard c < a.latent else { throw AnalysisError.categoryOutOfRange(category: c, categories: a.latent) }
            categories = [c]
        }
        if count != nil { AnalysisCLI.note("--count is ignored for a categorical latent: one image per category") }
        let (cells, columns) = runner.categoryGrid(categories: categories)
        let grid = try AnalysisCLI.grid(rows: categories.count, cols: columns, a)
        try output.prepare()
        try grid.writePNG(cells, to: output.out)
    }

    func writeSamples(_ runner: ModelRunner, label: Int, _ a: VAEArchitecture) throws {
        let n = count ?? 100
        let images = runner.generate(label: label, count: n, seed: UInt64(seed))
        let c = min(cols, n)
        let rows = (n + c - 1) / c
        let cells = images + [Float](repeating: 0, count: (rows * c - n) * a.inputDim)
        try AnalysisCLI.grid(rows: rows, cols: c, a).writePNG(cells, to: output.out)
    }
}
