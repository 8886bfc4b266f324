import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

// Hand-written plots: learning curves (SVG), latent scatter plots (SVG or RGB PNG with a tiny
// bitmap font), and grids with a separator line. No plotting library is involved.

// MARK: - Shared pieces

/// Ten distinct colours, one per label (label k gets colour k).
public enum Palette {
    public static let rgb: [(UInt8, UInt8, UInt8)] = [
        (0x1B, 0x6A, 0xC9), (0xF0, 0x7F, 0x13), (0x2E, 0x9E, 0x3A), (0xD4, 0x2A, 0x2A), (0x8A, 0x4F, 0xC4),
        (0x8C, 0x5A, 0x3C), (0xE0, 0x66, 0xB3), (0x6B, 0x6B, 0x6B), (0xB5, 0xB5, 0x12), (0x13, 0xB5, 0xC9),
    ]

    /// Colour of label `k` (wrapping after ten).
    public static func color(_ k: Int) -> (UInt8, UInt8, UInt8) { rgb[((k % rgb.count) + rgb.count) % rgb.count] }

    /// `#rrggbb` of label `k`.
    public static func hex(_ k: Int) -> String {
        let (r, g, b) = color(k)
        return "#" + [r, g, b].map { v in
            let s = String(v, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }
}

/// A linear axis with "nice" tick positions (1, 2 or 5 times a power of ten).
public struct PlotAxis: Equatable, Sendable {
    public let low: Double
    public let high: Double
    public let ticks: [Double]
    /// Decimals that tell the ticks apart.
    public let decimals: Int

    /// An axis covering [low, high] with about `target` ticks; ends are rounded out to ticks.
    /// `integer` keeps the tick step at least 1 (epochs).
    public init(covering low: Double, _ high: Double, target: Int = 6, integer: Bool = false) {
        var lo = low.isFinite ? low : 0, hi = high.isFinite ? high : 1
        if hi < lo { swap(&lo, &hi) }
        if hi - lo < 1e-12 * max(1, abs(lo)) {  // one value: widen around it
            let pad = max(abs(lo) * 0.05, integer ? 1 : 0.5)
            lo -= pad; hi += pad
        }
        let raw = (hi - lo) / Double(max(target, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let n = raw / magnitude
        var step = (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * magnitude
        if integer { step = max(1, step.rounded()) }
        let first = floor(lo / step + 1e-9), last = ceil(hi / step - 1e-9)
        self.low = first * step
        self.high = last * step
        var t: [Double] = []
        var i = first
        while i <= last + 0.5 { t.append(i * step); i += 1 }
        ticks = t
        decimals = step >= 1 ? 0 : Int(ceil(-log10(step) - 1e-9))
    }

    /// Position of `v` on a span from `a` (at low) to `b` (at high).
    public func map(_ v: Double, _ a: Double, _ b: Double) -> Double { a + (v - low) / (high - low) * (b - a) }

    public func label(_ v: Double) -> String { PlotText.number(v, decimals: decimals) }
}

/// Small text helpers shared by the SVG and raster plots.
public enum PlotText {
    /// `v` rounded to `decimals` places, without exponent notation ("-0" prints as "0").
    public static func number(_ v: Double, decimals: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        var scale = 1.0
        for _ in 0..<max(decimals, 0) { scale *= 10 }
        let units = (abs(v) * scale).rounded()
        let whole = (units / scale).rounded(.down)
        let frac = Int((units - whole * scale).rounded())
        var s = String(Int64(whole))
        if decimals > 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: max(0, decimals - f.count)) + f
        }
        return (v < 0 && units > 0 ? "-" : "") + s
    }

    /// Text escaped for SVG element content and attribute values.
    public static func xml(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A coordinate with one decimal (SVG output stays compact).
    static func coord(_ v: Double) -> String { number(v, decimals: 1) }
}

// MARK: - Learning curves

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

/// Scatter plots of 2-D latent codes coloured by label, as SVG or as an RGB PNG.
public enum LatentScatter {
    /// Shared geometry: a square plot with one axis range for both coordinates.
    struct Layout {
        let axis: PlotAxis
        let width = 680.0, height = 600.0
        let left = 76.0, top = 44.0, size = 490.0
        var right: Double { left + size }
        var bottom: Double { top + size }
        var legendX: Double { right + 22 }

        init(points: [Float]) {
            var lo = Double.infinity, hi = -Double.infinity
            for v in points where v.isFinite { lo = min(lo, Double(v)); hi = max(hi, Double(v)) }
            if !lo.isFinite { lo = -1; hi = 1 }
            axis = PlotAxis(covering: lo, hi, target: 8)
        }

        func x(_ v: Float) -> Double { axis.map(Double(v), left, right) }
        func y(_ v: Float) -> Double { axis.map(Double(v), bottom, top) }
    }

    /// An SVG document: `points` holds (z1, z2) pairs, `labels` one label per pair; one group of
    /// dots per label in the label's colour, axes with ticks and labels (z1, z2), a legend of
    /// the labels present, and `title`.
    public static func svg(points: [Float], labels: [UInt8], title: String) -> String {
        precondition(points.count == 2 * labels.count)
        let g = Layout(points: points)
        let c = PlotText.coord
        let w = Int(g.width), h = Int(g.height)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<title>\(PlotText.xml(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(w)\" height=\"\(h)\" fill=\"white\"/>\n"
        s += "<text x=\"\(c(g.left + g.size / 2))\" y=\"26\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(PlotText.xml(title))</text>\n"
        s += "<g stroke=\"#ececec\">\n"
        for t in g.axis.ticks {
            let p = g.axis.map(t, g.left, g.right), q = g.axis.map(t, g.bottom, g.top)
            s += "<line x1=\"\(c(p))\" y1=\"\(c(g.top))\" x2=\"\(c(p))\" y2=\"\(c(g.bottom))\"/>\n"
            s += "<line x1=\"\(c(g.left))\" y1=\"\(c(q))\" x2=\"\(c(g.right))\" y2=\"\(c(q))\"/>\n"
        }
        s += "</g>\n"
        let present = Set(labels).sorted()
        for k in present {
            s += "<g class=\"label\" id=\"label-\(k)\" fill=\"\(Palette.hex(Int(k)))\" fill-opacity=\"0.6\">\n"
            for i in 0..<labels.count where labels[i] == k {
                let x = points[2 * i], y = points[2 * i + 1]
                guard x.isFinite && y.isFinite else { continue }
                s += "<circle cx=\"\(c(g.x(x)))\" cy=\"\(c(g.y(y)))\" r=\"1.8\"/>\n"
            }
            s += "</g>\n"
        }
        s += "<g stroke=\"black\" fill=\"none\">\n<rect x=\"\(c(g.left))\" y=\"\(c(g.top))\" width=\"\(c(g.size))\" height=\"\(c(g.size))\"/>\n"
        for t in g.axis.ticks {
            let p = g.axis.map(t, g.left, g.right), q = g.axis.map(t, g.bottom, g.top)
            s += "<line x1=\"\(c(p))\" y1=\"\(c(g.bottom))\" x2=\"\(c(p))\" y2=\"\(c(g.bottom + 5))\"/>\n"
            s += "<line x1=\"\(c(g.left - 5))\" y1=\"\(c(q))\" x2=\"\(c(g.left))\" y2=\"\(c(q))\"/>\n"
        }
        s += "</g>\n<g fill=\"black\">\n"
        for t in g.axis.ticks {
            s += "<text x=\"\(c(g.axis.map(t, g.left, g.right)))\" y=\"\(c(g.bottom + 19))\" text-anchor=\"middle\">\(g.axis.label(t))</text>\n"
            s += "<text x=\"\(c(g.left - 8))\" y=\"\(c(g.axis.map(t, g.bottom, g.top) + 4))\" text-anchor=\"end\">\(g.axis.label(t))</text>\n"
        }
        s += "<text x=\"\(c(g.left + g.size / 2))\" y=\"\(c(g.bottom + 42))\" text-anchor=\"middle\">z1</text>\n"
        s += "<text transform=\"translate(22 \(c(g.top + g.size / 2))) rotate(-90)\" text-anchor=\"middle\">z2</text>\n"
        s += "<text x=\"\(c(g.legendX))\" y=\"\(c(g.top + 10))\" font-weight=\"bold\">label</text>\n"
        for (i, k) in present.enumerated() {
            let y = g.top + 30 + Double(i) * 22
            s += "<circle cx=\"\(c(g.legendX + 6))\" cy=\"\(c(y))\" r=\"6\" fill=\"\(Palette.hex(Int(k)))\"/>\n"
            s += "<text x=\"\(c(g.legendX + 20))\" y=\"\(c(y + 4))\">\(k)</text>\n"
        }
        s += "</g>\n</svg>\n"
        return s
    }

    /// The same plot rasterized: (width, height, RGB pixels). Dots are discs of radius 2
    /// blended at 60% opacity; text uses a 5x7 bitmap font at twice its size.
    public static func raster(points: [Float], labels: [UInt8]) -> (width: Int, height: Int, pixels: [UInt8]) {
        precondition(points.count == 2 * labels.count)
        let g = Layout(points: points)
        var r = Raster(width: Int(g.width), height: Int(g.height))
        let l = Int(g.left), t = Int(g.top), sz = Int(g.size)
        let light: (UInt8, UInt8, UInt8) = (0xEC, 0xEC, 0xEC), black: (UInt8, UInt8, UInt8) = (0, 0, 0)
        for tick in g.axis.ticks {
            let p = Int(g.axis.map(tick, g.left, g.right).rounded()), q = Int(g.axis.map(tick, g.bottom, g.top).rounded())
            r.fill(x: p, y: t, w: 1, h: sz, light)
            r.fill(x: l, y: q, w: sz, h: 1, light)
        }
        for i in 0..<labels.count {
            let x = points[2 * i], y = points[2 * i + 1]
            guard x.isFinite && y.isFinite else { continue }
            r.disc(cx: g.x(x), cy: g.y(y), radius: 2, Palette.color(Int(labels[i])), alpha: 0.6)
        }
        // Frame, ticks, tick labels.
        r.fill(x: l, y: t, w: sz + 1, h: 1, black); r.fill(x: l, y: t + sz, w: sz + 1, h: 1, black)
        r.fill(x: l, y: t, w: 1, h: sz + 1, black); r.fill(x: l + sz, y: t, w: 1, h: sz + 1, black)
        for tick in g.axis.ticks {
            let p = Int(g.axis.map(tick, g.left, g.right).rounded()), q = Int(g.axis.map(tick, g.bottom, g.top).rounded())
            r.fill(x: p, y: t + sz, w: 1, h: 6, black)
            r.fill(x: l - 6, y: q, w: 6, h: 1, black)
            let text = g.axis.label(tick)
            r.text(text, x: p - BitmapFont.width(text, scale: 2) / 2, y: t + sz + 10, scale: 2, black)
            r.text(text, x: l - 10 - BitmapFont.width(text, scale: 2), y: q - 7, scale: 2, black)
        }
        r.text("z1", x: l + sz / 2 - BitmapFont.width("z1", scale: 2) / 2, y: t + sz + 34, scale: 2, black)
        r.text("z2", x: 4, y: t + sz / 2 - 7, scale: 2, black)
        // Legend: one swatch and label per label present.
        for (i, k) in Set(labels).sorted().enumerated() {
            let y = t + 24 + i * 24
            r.disc(cx: g.legendX + 6, cy: Double(y), radius: 6, Palette.color(Int(k)), alpha: 1)
            r.text(String(k), x: Int(g.legendX) + 20, y: y - 7, scale: 2, black)
        }
        return (r.width, r.height, r.pixels)
    }

    /// Writes the plot to `path`: SVG when it ends in ".svg", otherwise an RGB PNG.
    public static func write(points: [Float], labels: [UInt8], title: String, to path: String) throws {
        if path.lowercased().hasSuffix(".svg") {
            try AtomicFile.write(Array(svg(points: points, labels: labels, title: title).utf8), to: path)
        } else {
            let img = raster(points: points, labels: labels)
            try PNG.write(path: path, width: img.width, height: img.height, channels: 3, pixels: img.pixels)
        }
    }
}

// MARK: - Raster drawing

/// An RGB canvas, white to start with.
struct Raster {
    let width: Int
    let height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func blend(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8), alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        for (k, v) in [c.0, c.1, c.2].enumerated() {
            let old = Double(pixels[i + k])
            pixels[i + k] = UInt8((old + (Double(v) - old) * alpha).rounded())
        }
    }

    mutating func fill(x: Int, y: Int, w: Int, h: Int, _ c: (UInt8, UInt8, UInt8)) {
        for yy in y..<(y + max(h, 0)) { for xx in x..<(x + max(w, 0)) { blend(xx, yy, c, alpha: 1) } }
    }

    /// A filled disc: pixels whose centres lie within `radius` of (cx, cy).
    mutating func disc(cx: Double, cy: Double, radius: Double, _ c: (UInt8, UInt8, UInt8), alpha: Double) {
        let r2 = radius * radius
        for y in Int(floor(cy - radius))...Int(ceil(cy + radius)) {
            for x in Int(floor(cx - radius))...Int(ceil(cx + radius)) {
                let dx = Double(x) + 0.5 - cx, dy = Double(y) + 0.5 - cy
                if dx * dx + dy * dy <= r2 { blend(x, y, c, alpha: alpha) }
            }
        }
    }

    mutating func text(_ s: String, x: Int, y: Int, scale: Int, _ c: (UInt8, UInt8, UInt8)) {
        var cursor = x
        for ch in s {
            if let rows = BitmapFont.glyphs[ch] {
                for (gy, row) in rows.enumerated() {
                    for (gx, bit) in row.enumerated() where bit == "#" {
                        fill(x: cursor + gx * scale, y: y + gy * scale, w: scale, h: scale, c)
                    }
                }
            }
            cursor += BitmapFont.advance * scale
        }
    }
}

/// A 5x7 bitmap font for tick labels and legends: digits, minus, point and "z".
enum BitmapFont {
    static let advance = 6

    static func width(_ s: String, scale: Int) -> Int { max(0, s.count * advance - 1) * scale }

    static let glyphs: [Character: [String]] = [
        "0": [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
        "1": ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
        "2": [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
        "3": ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
        "4": ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
        "5": ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
        "6": ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
        "7": ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
        "8": [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
        "9": [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
        "-": ["     ", "     ", "     ", " ### ", "     ", "     ", "     "],
        ".": ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "],
        "z": ["     ", "     ", "#####", "   # ", "  #  ", " #   ", "#####"],
    ]
}

// MARK: - Grids with a separator

extension ImageGrid {
    /// Renders like `render(_:)`, then paints the padding strip below each row in
    /// `separatorsAfterRows` and right of each column in `separatorsAfterColumns` mid-grey, so
    /// a header row (originals above re-drawings), a header column (the original before its
    /// re-drawings) or groups of rows (original/reconstruction pairs) stand apart.
    public func render(_ cells: [Float], separatorsAfterRows: [Int], separatorsAfterColumns: [Int] = []) -> [UInt8] {
        var out = render(cells)
        let grey: UInt8 = 150
        for r in separatorsAfterRows where r >= 0 && r < rows - 1 {
            let y0 = (r + 1) * (cellHeight + padding)
            for y in y0..<(y0 + padding) { for x in 0..<width { out[y * width + x] = grey } }
        }
        for c in separatorsAfterColumns where c >= 0 && c < cols - 1 {
            let x0 = (c + 1) * (cellWidth + padding)
            for y in 0..<height { for x in x0..<(x0 + padding) { out[y * width + x] = grey } }
        }
        return out
    }

    /// `render(_:separatorsAfterRows:separatorsAfterColumns:)` written atomically as a grayscale PNG.
    public func writePNG(_ cells: [Float], separatorsAfterRows: [Int], separatorsAfterColumns: [Int] = [], to path: String) throws {
        let pixels = render(cells, separatorsAfterRows: separatorsAfterRows, separatorsAfterColumns: separatorsAfterColumns)
        try AtomicFile.write(PNG.encode(width: width, height: height, channels: 1, pixels: pixels), to: path)
    }
}
