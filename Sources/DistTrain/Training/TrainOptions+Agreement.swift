extension TrainOptions {
    /// What every rank must agree on before training starts: where the run starts from (a
    /// resume on rank 0 only would leave rank 0 in a restore's broadcast and the others in
    /// the fresh start's). `poisonGradient` names its rank itself and is compared too.
    public var agreementItems: [(name: String, value: String)] {
        let start: String
        if let dir = resumeFrom { start = "--resume-from " + dir }
        else if resume { start = "--resume" }
        else if let file = initFrom { start = "--init-from " + file }
        else { start = "a fresh start" }
        return [("starting point", start),
                ("--poison-gradient", poisonGradient.map { "\($0.rank):\($0.step)" } ?? "(none)")]
    }
}
