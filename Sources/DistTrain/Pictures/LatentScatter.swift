import DistTrainIO
#if canImport(Glibc)
import Glibc
#endif

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
