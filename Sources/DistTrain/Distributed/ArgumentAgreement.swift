/// Ranks of one job must run the same command with the same arguments: a wrapper that passes
/// other arguments to some ranks (or a launcher that does) would otherwise leave ranks in
/// different collectives (a hang) or mix two experiments into one result.
extension Communicator {
    /// Every rank passes `items` (name, value) describing what it was asked to do; unless all
    /// ranks passed the same, every rank throws one `SharedFailure` naming the first item and
    /// rank that differ. Collective: call it before any collective that depends on the items.
    public func agree(on items: [(name: String, value: String)], what: String) throws {
        let mine = items.map { $0.name + "\u{1F}" + $0.value }.joined(separator: "\u{1E}")
        let all = allgather(Array(mine.utf8)).map { String(decoding: $0, as: UTF8.self) }
        guard let other = all.firstIndex(where: { $0 != all[0] }) else { return }
        func parse(_ s: String) -> [(String, String)] {
            s.split(separator: "\u{1E}", omittingEmptySubsequences: false).map {
                let p = $0.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(p[0]), p.count > 1 ? String(p[1]) : "")
            }
        }
        let root = parse(all[0]), theirs = parse(all[other])
        var detail = "they differ"
        for i in 0..<max(root.count, theirs.count) {
            let a = i < root.count ? root[i] : ("?", "(none)"), b = i < theirs.count ? theirs[i] : ("?", "(none)")
            if a != b {
                detail = "\(b.0 == a.0 ? a.0 : a.0 + "/" + b.0): rank \(other) has \(Self.shown(b.1)), rank 0 has \(Self.shown(a.1))"
                break
            }
        }
        throw SharedFailure(message: "ranks disagree on \(what): \(detail); start every rank with the same arguments")
    }

    static func shown(_ value: String) -> String {
        value.count <= 200 ? value : String(value.prefix(200)) + "..."
    }
}
