/// Paths reach the C library as NUL-terminated strings: a NUL inside one silently cuts it
/// short ("j/u\u0000x" would create "j/u"), and other control characters make paths that
/// no one can type or read in an error line. Every path from a config or the command line
/// is checked here first.
public enum PathCheck {
    /// A path holding a control character (U+0000-U+001F or U+007F), named by where it came from.
    public struct ControlCharacter: Error, CustomStringConvertible, Equatable {
        public let field: String
        public let path: String
        public let character: UInt32
        public var description: String {
            "\(field): the path \(PathCheck.visible(path)) holds the control character U+\(PathCheck.hex4(character)); paths must not contain NUL or other control characters"
        }
    }

    /// Throws when `path` holds a control character.
    public static func check(_ path: String, field: String) throws {
        if let c = path.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ControlCharacter(field: field, path: path, character: c.value)
        }
    }

    /// `text` in quotes with control characters written as \u{XX}, so it stays on one line.
    public static func visible(_ text: String) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            if s.value < 0x20 || s.value == 0x7F { out += "\\u{" + hex4(s.value) + "}" } else { out.unicodeScalars.append(s) }
        }
        return out + "\""
    }

    static func hex4(_ v: UInt32) -> String {
        let d = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - d.count)) + d
    }
}

extension TrainConfig {
    /// Checks every path field for control characters (see `PathCheck`).
    public func checkPaths() throws {
        try PathCheck.check(output.dir, field: "output.dir")
        try PathCheck.check(data.trainImages, field: "data.train_images")
        try PathCheck.check(data.trainLabels, field: "data.train_labels")
        try PathCheck.check(data.testImages, field: "data.test_images")
        try PathCheck.check(data.testLabels, field: "data.test_labels")
    }
}

extension TrainConfig {
    /// The largest config file read (1 MiB; the seed config is under 1 KiB).
    public static let maxFileBytes = 1 << 20
}
