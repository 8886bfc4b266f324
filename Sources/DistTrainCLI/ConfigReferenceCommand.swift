import ArgumentParser
import DistTrain

/// `disttrain config-reference` (hidden): prints the README's config reference, generated from
/// the table of config fields.
struct ConfigReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-reference",
        abstract: "Print the README's config reference section (Markdown), generated from the table of config fields.",
        shouldDisplay: false
    )

    func run() throws {
        print(TrainConfig.referenceMarkdown, terminator: "")
    }
}
