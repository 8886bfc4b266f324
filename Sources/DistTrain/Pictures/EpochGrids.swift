import DistTrainIO
import Models

/// Every `every` epochs (and at the last): RUN/grids/epoch-NNN.png, a generation grid (one row
/// per label, or per category), also sent to TensorBoard, and RUN/reconstructions/epoch-NNN.png,
/// fixed test images of rank 0's shard beside their reconstructions.
final class EpochGrids: EpochOutput {
    let model: VAE
    /// [parameterCount] the trainer's live parameters (read, never written).
    let params: FloatBuffer
    /// [stateCount] BatchNorm running statistics (pictures are drawn in eval mode).
    let state: FloatBuffer
    let test: DatasetShard
    let run: RunDirectory
    let events: TensorBoardWriter?
    let every: Int
    let seed: UInt64

    init(model: VAE, params: FloatBuffer, state: FloatBuffer, test: DatasetShard, run: RunDirectory, events: TensorBoardWriter?,
         every: Int, seed: UInt64) {
        self.model = model
        self.params = params
        self.state = state
        self.test = test
        self.run = run
        self.events = events
        self.every = every
        self.seed = seed
    }

    func write(_ e: FinishedEpoch) throws {
        let epoch = e.report.epoch
        guard every > 0 && (epoch % every == 0 || epoch == e.totalEpochs) else { return }
        // A VQ-VAE has no prior over its codes to generate from: reconstructions only.
        if model.architecture.latentKind != .vectorQuantized { try writeGenerationGrid(e) }
        try writeReconstructionGrid(model: model, params: params.base, state: state.base, shard: test, count: min(20, test.count),
                                    to: run.reconstructions + "/epoch-\(pad(epoch, 3)).png")
    }

    func writeGenerationGrid(_ e: FinishedEpoch) throws {
        let epoch = e.report.epoch
        let grid = Generator(model: model, params: params.base, state: state.base).labelGrid(cols: 10, seed: seed)
        let layout = ImageGrid(rows: model.architecture.classes, cols: 10)
        let path = run.grids + "/epoch-\(pad(epoch, 3)).png"
        try layout.writePNG(grid, to: path)
        try events?.image("grid/generation", png: try FileBytes.read(path), width: layout.width, height: layout.height,
                          channels: 1, step: e.report.step)
    }
}
