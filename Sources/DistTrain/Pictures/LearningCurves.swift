import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

/// SVG learning curves from metrics.jsonl: train_loss and test_loss per epoch.
public enum LearningCurves {
    /// One series point: epoch and loss.
    public typealias Point = (epoch: Double, loss: Double)

    /// The series named `key` ("train_loss", "test_loss") from metrics records: one point per
    /// epoch (the last record of an epoch wins, e.g. after a resume), sorted by epoch; records
    /// without a finite number under `epoch` or `key` are skipped.
    public static func series(_ metrics: [JSON], key: String) -> [Point] {
        var byEpoch: [Double: Double] = [:]
        for m in metrics {
            guard case let .number(e)? = m["epoch"], case let .number(v)? = m[key], e.isFinite, v.isFinite else { continue }
            byEpoch[e] = v
        }
        return byEpoch.keys.sorted().map { ($0, byEpoch[$0]!) }
    }

    /// The plot as a standalone SVG document: x axis epochs, y axis loss per sample, one
    /// polyline (with a dot per epoch) for train_loss and one for test_loss, ticks and tick
    /// labels on both axes, a legend and a title.
    public static func svg(metrics: [JSON], title: String = "Learning curves") -> String {
        let series: [(name: String, color: String, dash: String, points: [Point])] = [
            ("train_loss", "#1B6AC9", "", LearningCurves.series(metrics, key: "train_loss")),
            ("test_loss", "#F07F13", "6 3", LearningCurves.series(metrics, key: "test_loss")),
        ]
        let all = series.flatMap(\.points)
        let xs = all.map(\.epoch), ys = all.map(\.loss)
        let xAxis = PlotAxis(covering: xs.min() ?? 1, xs.max() ?? 2, target: 8, integer: true)
        let ySpan = (ys.max() ?? 1) - (ys.min() ?? 0)
        let yAxis = PlotAxis(covering: (ys.min() ?? 0) - 0.03 * ySpan, (ys.max() ?? 1) + 0.03 * ySpan, target: 6)

        let width = 720.0, height = 440.0
        let left = 80.0, right = width - 24, top = 44.0, bottom = height - 56
        func px(_ e: Double) -> Double { xAxis.map(e, left, right) }
        func py(_ v: Double) -> Double { yAxis.map(v, bottom, top) }
        let c = PlotText.coord

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<title>\(PlotText.xml(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
        s += "<text x=\"\(c(width / 2))\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(PlotText.xml(title))</text>\n"
        // Grid lines and ticks.
        s += "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n"
        for t in yAxis.ticks { s += "<line x1=\"\(c(left))\" y1=\"\(c(py(t)))\" x2=\"\(c(right))\" y2=\"\(c(py(t)))\"/>\n" }
        s += "</g>\n<g stroke=\"black\" stroke-width=\"1\">\n"
        s += "<line x1=\"\(c(left))\" y1=\"\(c(bottom))\" x2=\"\(c(right))\" y2=\"\(c(bottom))\"/>\n"
        s += "<line x1=\"\(c(left))\" y1=\"\(c(top))\" x2=\"\(c(left))\" y2=\"\(c(bottom))\"/>\n"
        for t in xAxis.ticks { s += "<line x1=\"\(c(px(t)))\" y1=\"\(c(bottom))\" x2=\"\(c(px(t)))\" y2=\"\(c(bottom + 5))\"/>\n" }
        for t in yAxis.ticks { s += "<line x1=\"\(c(left - 5))\" y1=\"\(c(py(t)))\" x2=\"\(c(left))\" y2=\"\(c(py(t)))\"/>\n" }
        s += "</g>\n<g fill=\"black\">\n"
        for t in xAxis.ticks { s += "<text x=\"\(c(px(t)))\" y=\"\(c(bottom + 19))\" text-anchor=\"middle\">\(xAxis.label(t))</text>\n" }
        for t in yAxis.ticks { s += "<text x=\"\(c(left - 8))\" y=\"\(c(py(t) + 4))\" text-anchor=\"end\">\(yAxis.label(t))</text>\n" }
        s += "<text x=\"\(c((left + right) / 2))\" y=\"\(c(height - 14))\" text-anchor=\"middle\">epoch</text>\n"
        s += "<text transform=\"translate(18 \(c((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">loss per sample (BCE + kl_weight KL)</text>\n"
        s += "</g>\n"
        // Series.
        for ser in series {
            let pts = ser.points.map { "\(c(px($0.epoch))),\(c(py($0.loss)))" }.joined(separator: " ")
            let dash = ser.dash.isEmpty ? "" : " stroke-dasharray=\"\(ser.dash)\""
            s += "<g class=\"series\" id=\"\(ser.name)\">\n"
            s += "<polyline fill=\"none\" stroke=\"\(ser.color)\" stroke-width=\"2\"\(dash) points=\"\(pts)\"/>\n"
            if ser.points.count <= 200 {
                for p in ser.points { s += "<circle cx=\"\(c(px(p.epoch)))\" cy=\"\(c(py(p.loss)))\" r=\"2.5\" fill=\"\(ser.color)\"/>\n" }
            }
            s += "</g>\n"
        }
        // Legend, top right inside the plot.
        let lx = right - 150, ly = top + 10
        s += "<g>\n<rect x=\"\(c(lx))\" y=\"\(c(ly))\" width=\"140\" height=\"48\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n"
        for (i, ser) in series.enumerated() {
            let y = ly + 16 + Double(i) * 20
            let dash = ser.dash.isEmpty ? "" : " stroke-dasharray=\"\(ser.dash)\""
            s += "<line x1=\"\(c(lx + 10))\" y1=\"\(c(y))\" x2=\"\(c(lx + 40))\" y2=\"\(c(y))\" stroke=\"\(ser.color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(c(lx + 48))\" y=\"\(c(y + 4))\">\(ser.name)</text>\n"
        }
        s += "</g>\n"
        if all.isEmpty {
            s += "<text x=\"\(c((left + right) / 2))\" y=\"\(c((top + bottom) / 2))\" text-anchor=\"middle\" fill=\"#999\">no epochs yet</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    /// Reads `metricsPath` (JSON lines; blank or unparsable lines are skipped, so a partly
    /// written last line does no harm) and writes the SVG atomically to `svgPath`.
    public static func write(metricsPath: String, to svgPath: String) throws {
        let text = try FileBytes.readString(metricsPath)
        let records = text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
        try AtomicFile.write(Array(svg(metrics: records).utf8), to: svgPath)
    }
}

// MARK: - Latent scatter plots
