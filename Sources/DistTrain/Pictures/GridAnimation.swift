import DistTrainIO

/// RUN/grids/animation.png: the generation grids of every epoch so far as one animated PNG
/// (seed 004's animation over epochs), rewritten after each new grid. It is assembled from
/// the grid files themselves, so a resumed run's animation still starts at epoch 1, and
/// `disttrain animate` can make one for any run directory.
public final class GridAnimation: EpochOutput {
    let run: RunDirectory
    let frameMilliseconds: Int

    init(run: RunDirectory, frameMilliseconds: Int) {
        self.run = run
        self.frameMilliseconds = frameMilliseconds
    }

    func write(_ e: FinishedEpoch) throws {
        let frames = GridAnimation.frames(in: run)
        // Only when this epoch drew a grid (grid_every), and once there is something to animate.
        guard frames.last == run.grids + "/epoch-\(pad(e.report.epoch, 3)).png", frames.count >= 2 else { return }
        try AnimatedPNG.write(frames: frames, to: run.grids + "/animation.png", delayMilliseconds: frameMilliseconds)
    }

    /// The run's grid files (grids/epoch-NNN.png), in epoch order.
    public static func frames(in run: RunDirectory) -> [String] {
        Directories.list(run.grids)
            .compactMap { name -> (Int, String)? in
                guard name.hasPrefix("epoch-"), name.hasSuffix(".png"),
                      let n = Int(name.dropFirst(6).dropLast(4)) else { return nil }
                return (n, run.grids + "/" + name)
            }
            .sorted { $0.0 < $1.0 }
            .map(\.1)
    }
}
