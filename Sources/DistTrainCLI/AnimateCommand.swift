import ArgumentParser
import DistTrain
import DistTrainIO

/// `disttrain animate`: a run's generation grids over epochs as one animated PNG.
struct AnimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "animate",
        abstract: "Join a run's generation grids (grids/epoch-NNN.png) into one animated PNG, epoch by epoch.",
        discussion: """
        The trainer already keeps RUN/grids/animation.png up to date when output.animation_ms \
        is above 0 (the default); this command makes one for any run directory, with another \
        frame time or file name. Every frame is one epoch's grid: rows are labels (or categories), \
        columns latent draws that stay fixed from epoch to epoch, so the animation shows the \
        same styles sharpening as training goes on. Animated PNG plays in browsers, on GitHub and \
        in most image viewers; others show the first epoch.

          disttrain animate --run runs/cvae --out cvae-epochs.png --frame-ms 250
        """
    )

    @Option(name: .customLong("run"), help: ArgumentHelp("Run directory (holds grids/epoch-NNN.png).", valueName: "dir"))
    var runDirectory: String

    @Option(name: .long, help: ArgumentHelp("Output file (default: RUN/grids/animation.png; its directory is created).", valueName: "file.png"))
    var out: String?

    @Option(name: .long, help: "Milliseconds each epoch is shown (1-65535).")
    var frameMs: Int = 400

    func validate() throws {
        if runDirectory.isEmpty { throw ValidationError("--run must not be empty") }
        if out?.isEmpty == true { throw ValidationError("--out must not be empty") }
        if !(1...65_535).contains(frameMs) { throw ValidationError("--frame-ms must be between 1 and 65535, got \(frameMs)") }
    }

    func run() throws {
        guard Launch.isWriter else { return }
        let dir = RunDirectory(runDirectory)
        let frames = GridAnimation.frames(in: dir)
        guard !frames.isEmpty else {
            throw AnalysisError.noFrames(path: dir.grids)
        }
        let target = out ?? dir.grids + "/animation.png"
        try AnalysisCLI.prepareOutput(target)
        try AnimatedPNG.write(frames: frames, to: target, delayMilliseconds: frameMs)
        print("wrote \(target): \(frames.count) epochs, \(frameMs) ms each")
    }
}
