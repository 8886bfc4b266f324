import DistTrainIO
import ArgumentParser
import DistTrain
import Models

/// `disttrain manifold`: the decoded 2-D latent manifold and the latent scatter of the test set.
struct ManifoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifold",
        abstract: "Draw the latent space of a model with a 2-D latent: the decoded manifold and/or a scatter of the test set's codes.",
        discussion: """
        Only for models with a 2-D Gaussian latent (model.latent 2, e.g. configs/vae-003-2d.json, \
        configs/cvae-2d.json); any other latent size, and a categorical latent, is refused.

        --out F.png: an N x N grid (--n, default 15) of decoded latent points at the standard \
        normal quantiles q_i = ppf(p_i) of p = linspace(0.05, 0.95, N) (seed 003's layout): the \
        cell in row i, column j decodes z = (q_j, q_i), so z1 grows to the right and z2 grows \
        downwards. PNG (30*N+2) x (30*N+2). For a conditional model, --label L draws one grid \
        with label L, and --label all (the default) writes one file per label: F-label0.png ... \
        F-label9.png (F.png itself is not written). An unconditional model ignores --label.

        --scatter S.svg | S.png: the posterior means of the first --count test images (default \
        all 10000), each encoded with its own label, one dot per image coloured by its label \
        (10 colours), with axes (z1 right, z2 up), ticks and a legend. S.svg is hand-written \
        SVG; any other name gets an RGB PNG (680 x 600).

          disttrain manifold --checkpoint runs/vae-003-2d/checkpoints/best --out manifold.png --scatter latent.svg
          disttrain manifold --checkpoint runs/cvae-2d/checkpoints/best --out m.png   # m-label0.png ... m-label9.png
        """
    )

    @OptionGroup var model: CheckpointOptions

    @Option(name: .long, help: ArgumentHelp("Output PNG of the decoded manifold (per label: F-labelK.png for a conditional model with --label all).", valueName: "file.png"))
    var out: String?

    @Option(name: .customLong("n"), help: "Grid points per side of the manifold.")
    var n: Int = 15

    @Option(name: .long, help: ArgumentHelp("Label of the manifold of a conditional model (0-9), or 'all' for one file per label (default).", valueName: "label|all"))
    var label: LabelChoice?

    @Option(name: .long, help: ArgumentHelp("Also write a scatter plot of the test set's latent means coloured by label: SVG if the name ends in .svg, else PNG.", valueName: "file.svg|file.png"))
    var scatter: String?

    @Option(name: .long, help: "Test images in the scatter plot, from the first (default: all).")
    var count: Int?

    @OptionGroup var data: DataOptions

    func validate() throws {
        if n < 1 || n > 200 { throw ValidationError("--n must be between 1 and 200, got \(n)") }
        if let c = count, c < 1 { throw ValidationError("--count must be at least 1, got \(c)") }
        if out?.isEmpty == true || scatter?.isEmpty == true { throw ValidationError("--out and --scatter must not be empty") }
    }

    func run() throws {
        guard Launch.isWriter else { return }  // single-process work: the other ranks of an mpirun job stop at once
        guard out != nil || scatter != nil else {
            throw AnalysisCommandError.nothingToWrite(command: "manifold", options: "--out FILE.png and/or --scatter FILE.svg")
        }
        let trained = try model.load()
        let a = trained.architecture
        if a.latentKind == .vectorQuantized {
            throw AnalysisError.vectorQuantized(path: trained.path, what: "a latent manifold", codes: a.codebookSize)
        }
        guard a.latentKind == .gaussian else {
            throw AnalysisError.needsGaussianLatent(path: trained.path, what: "a latent manifold", categories: a.latent)
        }
        guard a.latent == 2 else { throw AnalysisError.latentNotTwo(path: trained.path, latent: a.latent) }
        let runner = trained.runner

        if let out {
            var labels: [Int?] = [nil]
            if a.conditionsDecoder {
                switch label ?? .all {
                case .all: labels = Array(0..<a.classes)
                case let .one(l): try AnalysisCLI.check(label: l, a); labels = [l]
                }
            } else if label != nil {
                AnalysisCLI.note("the model is unconditional (conditioning none): --label ignored")
            }
            try AnalysisCLI.prepareOutput(out)
            let perLabel = labels.count > 1
            for l in labels {
                let cells = runner.manifold(n: n, label: l ?? 0)
                try AnalysisCLI.grid(rows: n, cols: n, a).writePNG(cells, to: perLabel ? AnalysisCLI.perLabel(out, l!) : out)
            }
        }

        if let scatter {
            let files = data.files
            let wanted = count
            let shard = try files.test(classes: a.classes) { total in
                let m = wanted ?? total
                guard m <= total else { throw AnalysisError.countTooLarge(what: "--count", count: m, available: total, path: files.testImages) }
                return 0..<m
            }
            let means = try runner.posteriorMeans(shard, locals: Array(0..<shard.count))
            try AnalysisCLI.prepareOutput(scatter)
            try LatentScatter.write(points: means, labels: shard.labels,
                                    title: "Posterior means of \(shard.count) test images", to: scatter)
        }
    }
}
