/// Another rank failed; this rank stops quietly (the failing rank prints the message).
public struct PeerFailure: Error, CustomStringConvertible {
    public let rank: Int
    /// The failing rank's exit status, so every rank of the job exits with the same one.
    public var status: ExitStatus = .failure
    public var description: String { "stopping: rank \(rank) failed" }
}

/// A failure every rank detected at the same point (e.g. a NaN in the averaged gradient):
/// rank 0 prints it, the others stop quietly.
public struct SharedFailure: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension Communicator {
    /// Runs `body` on every rank, then agrees on the outcome: if any rank threw, every rank
    /// throws (the lowest failing rank its own error, the rest `PeerFailure`), so a failure on
    /// one rank never leaves the others waiting in a collective call.
    public func collectively<T>(_ body: () throws -> T) throws -> T {
        let result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        var failed = false
        if case .failure = result { failed = true }
        if let r = firstFailingRank(failed) {
            // Only on failure: the failing rank's exit status reaches every rank.
            var mine: Int64 = 0
            if r == rank, case let .failure(e) = result { mine = Int64(ExitStatus.of(e).rawValue) }
            let status = ExitStatus(rawValue: Int32(allreduceMax(mine))) ?? .failure
            if r == rank, case let .failure(e) = result { throw e }
            throw PeerFailure(rank: r, status: status)
        }
        return try result.get()
    }

    /// Runs `body` on the writer (rank 0) only and shares its success or failure with every rank.
    public func onWriter(_ body: () throws -> Void) throws {
        try collectively { if isWriter { try body() } }
    }
}
