#!/usr/bin/env python3
"""Report of launch/scaling: tables, allreduce fit, predicted efficiency at 8-64 ranks, SVG chart.

    python3 launch/scaling_report.py --runs RUNS.jsonl --allreduce AR.jsonl --fit FIT.json --out DIR
                                     [--fit-by-ranks FITS.jsonl] [--cores N] [--net-gbps 10]
                                     [--net-latency-us 25] [--strong-global-batch 256]
                                     [--weak-local-batch 128] [--quick --quick-steps N] [--hostfile FILE]

RUNS.jsonl holds one object per training run (written by launch/scaling), AR.jsonl the lines of
`disttrain bench-allreduce` at every rank count, FIT.json the line of `disttrain bench-allreduce
--fit`. Writes DIR/scaling.json, DIR/scaling.md and DIR/scaling.svg, and prints scaling.md.
"""
import argparse
import json
import math

PREDICT_RANKS = (8, 16, 32, 64)
CLASSES = 10  # the trainer needs at least this many samples per rank (one per label)


def ring_seconds(nbytes, p, alpha, beta):
    """Ring allreduce: 2(p-1) alpha + 2(p-1)/p n beta (0 for one rank)."""
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes * beta


def compute_split(base):
    """Per-sample seconds before backward (data + forward) and of backward, and Adam seconds per
    step, from the step_ms of the 1-rank 1-thread strong run."""
    s, b = base["step_ms"], base["global_batch"]
    return {"before_backward_s_per_sample": (s["data"] + s["forward"]) / 1000 / b,
            "backward_s_per_sample": s["backward"] / 1000 / b,
            "optimizer_s_per_step": s["optimizer"] / 1000,
            "from_run": f"strong 1 x 1, global batch {b}"}


def sharded_seconds(params, width, p, alpha, beta):
    """ZeRO-1's two exchanges (0, 0 for one rank): a ring reduce-scatter of the gradient at the wire
    width, (p-1) alpha + (p-1)/p n_wire beta, and a ring allgather of the fp32 parameters,
    (p-1) alpha + (p-1)/p n_fp32 beta."""
    if p == 1:
        return 0.0, 0.0
    return ((p - 1) * alpha + (p - 1) / p * params * width * beta,
            (p - 1) * alpha + (p - 1) / p * params * 4 * beta)


def step_seconds(c, local_batch, comm_s, overlap, adam_share=1.0, gather_s=0.0):
    """One step. comm_s: the gradient exchange (allreduce, or ZeRO-1's reduce-scatter), which
    disttrain starts bucket by bucket during backward; gather_s: ZeRO-1's parameter allgather,
    started range by range after Adam and waited for by the next forward layer by layer.
    No overlap runs both exchanges after the compute they follow; full overlap hides the gradient
    exchange behind backward and the allgather behind data + forward.
    adam_share: the fraction of the parameters this rank updates (1/p with a sharded optimizer)."""
    fwd = local_batch * c["before_backward_s_per_sample"]
    bwd = local_batch * c["backward_s_per_sample"]
    adam = c["optimizer_s_per_step"] * adam_share
    if overlap:
        return max(fwd, gather_s) + max(bwd, comm_s) + adam
    return fwd + bwd + comm_s + adam + gather_s


def predict(c, params, alpha, beta, strong_global, weak_local, ranks):
    """Predicted step time, samples/s and efficiency per (ranks, wire) for strong and weak scaling."""
    rows = []
    t1_strong = step_seconds(c, strong_global, 0, False)
    t1_weak = step_seconds(c, weak_local, 0, False)
    for optimizer, wire, width in (("replicated", "fp32", 4), ("replicated", "bf16", 2), ("zero1", "fp32", 4), ("zero1", "bf16", 2)):
        for p in ranks:
            sharded = optimizer == "zero1"
            if sharded:
                comm_s, gather_s = sharded_seconds(params, width, p, alpha, beta)
            else:
                comm_s, gather_s = ring_seconds(params * width, p, alpha, beta), 0.0
            row = {"ranks": p, "wire": wire, "optimizer": optimizer, "gradient_bytes": params * width,
                   "allreduce_ms": (comm_s + gather_s) * 1000}
            if sharded:
                row["reduce_scatter_ms"], row["allgather_ms"] = comm_s * 1000, gather_s * 1000
            for mode, local, t1 in (("strong", strong_global / p, t1_strong), ("weak", weak_local, t1_weak)):
                entry = {"local_batch": local, "runnable": local >= CLASSES and local == int(local)}
                for name, overlap in (("no_overlap", False), ("full_overlap", True)):
                    t = step_seconds(c, local, comm_s, overlap, 1 / p if sharded else 1.0, gather_s)
                    entry[f"step_ms_{name}"] = t * 1000
                    entry[f"samples_per_s_{name}"] = p * local / t
                    # samples/s at p over p x samples/s at 1 rank (the same global batch, or the same local one)
                    entry[f"efficiency_{name}"] = t1 / (p * t) if mode == "strong" else t1 / t
                row[mode] = entry
            rows.append(row)
    return rows


def assumptions(args, c, params, fit):
    """The prediction's assumptions, one sentence each, with the numbers it used."""
    too_small = [p for p in PREDICT_RANKS if args.strong_global_batch / p < CLASSES]
    return [
        f"ring allreduce, T(n, p) = 2(p-1) alpha + 2(p-1)/p n beta, on a network of latency alpha = {args.net_latency_us:g} us "
        f"and bandwidth 1/beta = {args.net_gbps:g} GB/s (flags --net-latency-us, --net-gbps), full-duplex links, no contention, "
        "reduction arithmetic free",
        "one rank per node with 1 BLAS thread, every node as fast as this machine's 1-rank 1-thread run, so every ring step crosses the network",
        f"gradient of the seed CVAE: {params} parameters x 4 bytes (fp32 wire) or x 2 bytes (bf16 wire; conversion cost ignored)",
        f"compute per sample constant in the local batch: data + forward {c['before_backward_s_per_sample'] * 1e6:.1f} us and "
        f"backward {c['backward_s_per_sample'] * 1e6:.1f} us per sample, from the step_ms of the {c['from_run']} run; optimistic "
        "at small local batches, where sgemm runs further from its peak",
        f"Adam cost per rank: {c['optimizer_s_per_step'] * 1000:.2f} ms per step when every rank updates all parameters (replicated); "
        "1/p of it with the sharded optimizer (zero1: runtime.shard_optimizer), whose exchange is a reduce-scatter of the gradient "
        "plus an allgather of the fp32 parameters, (p-1) alpha + (p-1)/p n beta each (runtime.overlap_allgather: the reduce-scatters "
        "start bucket by bucket during backward, the allgathers range by range after Adam, each waited for by the first forward "
        "layer that reads it)",
        "two bounds: no overlap (the exchanges run after the compute they follow: step = data + forward + backward + exchange + Adam "
        "[+ allgather]) and full overlap (each hides behind that compute: step = [max(data + forward, allgather) with zero1] "
        "+ max(backward, allreduce or reduce-scatter) + Adam)",
        f"strong scaling keeps the global batch at {args.strong_global_batch} (local batch {args.strong_global_batch}/p); "
        f"weak scaling keeps the local batch at {args.weak_local_batch}; efficiency = samples/s at p / (p x samples/s at 1 rank)",
        f"the trainer needs at least {CLASSES} samples per rank (one per label): strong scaling at "
        + (", ".join(f"{p} ranks (local batch {args.strong_global_batch / p:g})" for p in too_small) + (" are model figures only, not runnable jobs" if len(too_small) > 1 else " is a model figure only, not a runnable job")
           if too_small else f"every predicted rank count keeps at least {CLASSES} samples per rank"),
        "step time only: test evaluation, data loading at start-up and stragglers are left out",
        f"the measured allreduce fit (alpha {fit['alpha_us']:.2f} us, 1/beta {fit['beta_gbps']:.2f} GB/s, ranks {fit['ranks']}, "
        + (f"across the hosts of {args.hostfile}) is reported, not used" if args.hostfile else
           "over this machine's shared memory) is reported, not used: shared memory is not a network"),
    ]


def allreduce_table(ar, fit):
    ranks = sorted({r["ranks"] for r in ar})
    sizes = sorted({r["bytes"] for r in ar})
    by = {(r["ranks"], r["bytes"]): r for r in ar}
    head = "| bytes | " + " | ".join(f"{p} ranks: median / min us | ring fit at {p} (us)" for p in ranks) + " |\n"
    head += "|---|" + "---|---|" * len(ranks) + "\n"
    lines = []
    for n in sizes:
        cells = []
        for p in ranks:
            r = by.get((p, n))
            cells.append(f"{r['median_s'] * 1e6:.1f} / {r['min_s'] * 1e6:.1f}" if r else "")
            cells.append(f"{ring_seconds(n, p, fit['alpha_s'], fit['beta_s_per_byte']) * 1e6:.1f}")
        model = " (model gradient)" if any(r.get("model_gradient") for r in ar if r["bytes"] == n) else ""
        lines.append(f"| {n}{model} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def prediction_table(rows):
    head = ("| ranks | optimizer | wire | exchange ms | strong: local batch | strong efficiency, no overlap / full overlap | strong samples/s | "
            "weak efficiency, no overlap / full overlap | weak samples/s |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        s, w = r["strong"], r["weak"]
        note = "" if s["runnable"] else f" (below {CLASSES}: model only)"
        lines.append(f"| {r['ranks']} | {r.get('optimizer', 'replicated')} | {r['wire']} | {r['allreduce_ms']:.2f} | {s['local_batch']:g}{note} | "
                     f"{s['efficiency_no_overlap']:.3f} / {s['efficiency_full_overlap']:.3f} | "
                     f"{s['samples_per_s_no_overlap']:.0f} / {s['samples_per_s_full_overlap']:.0f} | "
                     f"{w['efficiency_no_overlap']:.3f} / {w['efficiency_full_overlap']:.3f} | "
                     f"{w['samples_per_s_no_overlap']:.0f} / {w['samples_per_s_full_overlap']:.0f} |")
    return head + "\n".join(lines) + "\n"


def runs_table(runs):
    head = ("| mode | ranks x threads | exchange | global batch | samples/s | speedup | efficiency | "
            "ms/step: data / fwd / bwd / allreduce wait / adam | eval s | test loss |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in runs:
        s = r["step_ms"]
        over = " (oversubscribed)" if r["oversubscribed"] else ""
        lines.append(f"| {r['mode']} | {r['ranks']} x {r['threads_per_rank']}{over} | {r['allreduce']} {r['wire']} | {r['global_batch']} | "
                     f"{r['samples_per_s']:.0f} | {r.get('speedup', '')} | {r.get('efficiency', '')} | "
                     f"{s['data']:.2f} / {s['forward']:.2f} / {s['backward']:.2f} / {s['allreduce_wait']:.2f} / {s['optimizer']:.2f} | "
                     f"{s['eval_seconds']:.2f} | {r['test_loss']:.2f} |")
    return head + "\n".join(lines) + "\n"


# ---- SVG chart ------------------------------------------------------------------------------

COLORS = {"strong": "#1f77b4", "weak": "#d95f02"}


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_step(span, count=5):
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if raw <= m * mag)


def marker(kind, x, y, color, hollow, size=5):
    fill = "white" if hollow else color
    style = f'fill="{fill}" stroke="{color}" stroke-width="1.8"'
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size}" {style}/>'
    if kind == "square":
        return f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size}" height="{2 * size}" {style}/>'
    return f'<path d="M{x:.1f},{y - size - 1:.1f} L{x + size + 1:.1f},{y:.1f} L{x:.1f},{y + size + 1:.1f} L{x - size - 1:.1f},{y:.1f} Z" {style}/>'


class Panel:
    """A plot area with a log2 rank axis from 1 to max_rank and a linear y axis from 0."""

    def __init__(self, x0, y0, w, h, max_rank, ymax, ystep=None):
        self.x0, self.y0, self.w, self.h = x0, y0, w, h
        self.lo, self.hi = -0.25, math.log2(max_rank) + 0.25
        self.ystep = ystep or nice_step(ymax)
        self.ymax = math.ceil(ymax / self.ystep) * self.ystep
        self.max_rank = max_rank

    def x(self, ranks):
        return self.x0 + (math.log2(ranks) - self.lo) / (self.hi - self.lo) * self.w

    def y(self, value):
        return self.y0 + self.h - value / self.ymax * self.h

    def polyline(self, points, color, dash="", width=2):
        d = " ".join(f"{self.x(p):.1f},{self.y(v):.1f}" for p, v in points)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}"{dashed}/>'

    def axes(self, title, xlabel, ylabel, yfmt):
        out = [f'<rect x="{self.x0}" y="{self.y0}" width="{self.w}" height="{self.h}" fill="none" stroke="#444"/>',
               f'<text x="{self.x0 + self.w / 2}" y="{self.y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold">{esc(title)}</text>',
               f'<text x="{self.x0 + self.w / 2}" y="{self.y0 + self.h + 40}" text-anchor="middle" font-size="13">{esc(xlabel)}</text>',
               f'<text transform="translate({self.x0 - 58},{self.y0 + self.h / 2}) rotate(-90)" text-anchor="middle" font-size="13">{esc(ylabel)}</text>']
        p = 1
        while p <= self.max_rank:
            x = self.x(p)
            out.append(f'<line x1="{x:.1f}" y1="{self.y0 + self.h}" x2="{x:.1f}" y2="{self.y0 + self.h + 5}" stroke="#444"/>')
            out.append(f'<text x="{x:.1f}" y="{self.y0 + self.h + 19}" text-anchor="middle" font-size="12">{p}</text>')
            p *= 2
        v = 0.0
        while v <= self.ymax + 1e-9:
            y = self.y(v)
            out.append(f'<line x1="{self.x0 - 5}" y1="{y:.1f}" x2="{self.x0 + self.w}" y2="{y:.1f}" stroke="#ddd"/>'
                       if v > 0 else f'<line x1="{self.x0 - 5}" y1="{y:.1f}" x2="{self.x0}" y2="{y:.1f}" stroke="#444"/>')
            out.append(f'<text x="{self.x0 - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{yfmt(v)}</text>')
            v += self.ystep
        return out


def legend(x, y, entries):
    """entries: (svg drawing the key at (0, 0), label); laid out in one column."""
    out = []
    for i, (key, label) in enumerate(entries):
        out.append(f'<g transform="translate({x},{y + 18 * i})">{key}<text x="26" y="4" font-size="12">{esc(label)}</text></g>')
    return out


def chart(runs, curve, oversubscribed_note, quick):
    """Measured samples/s against ranks (left) and measured and predicted efficiency (right)."""
    measured = {m: sorted((r for r in runs if r["mode"] == m and r["threads_per_rank"] == 1), key=lambda r: r["ranks"])
                for m in ("strong", "weak")}
    max_rank = max([r["ranks"] for rs in measured.values() for r in rs] + [2])
    top = max([r["samples_per_s"] for rs in measured.values() for r in rs] +
              [rs[0]["samples_per_s"] * max_rank for rs in measured.values() if rs])
    left = Panel(90, 60, 360, 290, 1 << math.ceil(math.log2(max_rank)), top * 1.05)
    right = Panel(600, 60, 360, 290, 64, 1.1, 0.2)
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="510" viewBox="0 0 1000 510" '
           'font-family="DejaVu Sans, Arial, sans-serif">', '<rect width="1000" height="510" fill="white"/>']
    svg += left.axes("Measured throughput" + (" (quick run)" if quick else ""), "MPI ranks (1 BLAS thread each)", "samples/s",
                     lambda v: f"{v:,.0f}")
    svg += right.axes("Efficiency: measured and predicted", "MPI ranks (predicted: one per node)", "parallel efficiency",
                      lambda v: f"{v:.1f}")
    for mode, rs in measured.items():
        color, kind = COLORS[mode], "circle" if mode == "strong" else "square"
        if not rs:
            continue
        base = rs[0]["samples_per_s"]
        svg.append(left.polyline([(1, base), (left.max_rank, base * left.max_rank)], color, "6,4", 1.2))
        svg.append(left.polyline([(r["ranks"], r["samples_per_s"]) for r in rs], color))
        svg.append(right.polyline([(r["ranks"], r["efficiency"]) for r in rs], color, "", 1))
        for r in rs:
            svg.append(marker(kind, left.x(r["ranks"]), left.y(r["samples_per_s"]), color, r["oversubscribed"]))
            svg.append(marker(kind, right.x(r["ranks"]), right.y(r["efficiency"]), color, r["oversubscribed"]))
    svg.append(f'<line x1="{right.x0}" y1="{right.y(1):.1f}" x2="{right.x0 + right.w}" y2="{right.y(1):.1f}" stroke="#888" stroke-dasharray="6,4"/>')
    for mode in ("strong", "weak"):
        color = COLORS[mode]
        lower = [(r["ranks"], r[mode]["efficiency_no_overlap"]) for r in curve]
        upper = [(r["ranks"], r[mode]["efficiency_full_overlap"]) for r in curve]
        band = " ".join(f"{right.x(p):.1f},{right.y(v):.1f}" for p, v in lower + upper[::-1])
        svg.append(f'<polygon points="{band}" fill="{color}" fill-opacity="0.12" stroke="none"/>')
        svg.append(right.polyline(lower, color, "", 2))
        svg.append(right.polyline(upper, color, "7,4", 2))
        for r in curve:
            if r["ranks"] in PREDICT_RANKS:
                for key in ("efficiency_no_overlap", "efficiency_full_overlap"):
                    svg.append(marker("diamond", right.x(r["ranks"]), right.y(r[mode][key]), color, not r[mode]["runnable"], 4))
    svg += legend(left.x0 + 10, 420, [
        (marker("circle", 8, 0, COLORS["strong"], False), "strong scaling (global batch fixed)"),
        (marker("square", 8, 0, COLORS["weak"], False), "weak scaling (local batch fixed)"),
        (marker("circle", 8, 0, "#444", True), oversubscribed_note),
        ('<line x1="0" y1="0" x2="18" y2="0" stroke="#444" stroke-width="1.2" stroke-dasharray="6,4"/>', "ideal: linear from the 1-rank point"),
    ])
    svg += legend(right.x0 + 10, 420, [
        ('<line x1="0" y1="0" x2="18" y2="0" stroke="#444" stroke-width="2"/>', "predicted, no overlap (fp32 wire, replicated Adam)"),
        ('<line x1="0" y1="0" x2="18" y2="0" stroke="#444" stroke-width="2" stroke-dasharray="7,4"/>', "predicted, full overlap with backward"),
        (marker("diamond", 8, 0, "#444", True, 4), f"hollow: local batch below {CLASSES}, not runnable"),
        (marker("diamond", 8, 0, "#444", False, 4), "diamonds: predicted; circles, squares: measured"),
    ])
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


# ---- main -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="training runs, one JSON object per line")
    ap.add_argument("--allreduce", required=True, help="lines of disttrain bench-allreduce")
    ap.add_argument("--fit", required=True, help="the line of disttrain bench-allreduce --fit")
    ap.add_argument("--fit-by-ranks", help="lines of bench-allreduce --fit, each over one rank count alone")
    ap.add_argument("--out", required=True, help="directory for scaling.json, scaling.md, scaling.svg")
    ap.add_argument("--cores", type=int, default=0, help="cores of this machine")
    ap.add_argument("--net-gbps", type=float, default=10, help="network bandwidth of the prediction, GB/s")
    ap.add_argument("--net-latency-us", type=float, default=25, help="network latency of the prediction, microseconds")
    ap.add_argument("--strong-global-batch", type=int, default=256, help="global batch of strong scaling")
    ap.add_argument("--weak-local-batch", type=int, default=128, help="local batch of weak scaling")
    ap.add_argument("--quick", action="store_true", help="mark the report as a quick (short-run) one")
    ap.add_argument("--hostfile", help="the hostfile the allreduce benchmark ran across (none: this machine)")
    ap.add_argument("--quick-steps", type=int, default=0, help="steps per training run in quick mode")
    args = ap.parse_args()
    if args.net_gbps <= 0 or args.net_latency_us < 0:
        ap.error("--net-gbps must be positive and --net-latency-us non-negative")

    runs = [json.loads(l) for l in open(args.runs) if l.strip()]
    ar = [json.loads(l) for l in open(args.allreduce) if l.strip()]
    fit = json.loads(open(args.fit).read())
    fits_by_ranks = [json.loads(l) for l in open(args.fit_by_ranks) if l.strip()] if args.fit_by_ranks else []
    base = {m: next(r for r in runs if r["mode"] == m and r["ranks"] == 1 and r["threads_per_rank"] == 1) for m in ("strong", "weak")}
    for r in runs:
        b = base.get(r["mode"])
        if b:
            r["speedup"] = round(r["samples_per_s"] / b["samples_per_s"], 3)
            r["efficiency"] = round(r["speedup"] / (r["ranks"] * r["threads_per_rank"]), 3)

    params = next(r["floats"] for r in ar if r.get("model_gradient"))
    c = compute_split(base["strong"])
    alpha, beta = args.net_latency_us * 1e-6, 1 / (args.net_gbps * 1e9)
    rows = predict(c, params, alpha, beta, args.strong_global_batch, args.weak_local_batch, PREDICT_RANKS)
    curve = [r for r in predict(c, params, alpha, beta, args.strong_global_batch, args.weak_local_batch, (1, 2, 4) + PREDICT_RANKS)
             if r["wire"] == "fp32" and r["optimizer"] == "replicated"]  # one series per line of the chart
    notes = assumptions(args, c, params, fit)
    ar_ranks = sorted({r["ranks"] for r in ar})
    iterations = sorted({r["iterations"] for r in ar})

    report = {"machine_cores": args.cores, "model": "seed CVAE (1.36M parameters, 7.36 MFLOP/sample/step)",
              "quick": args.quick, "runs": runs,
              "allreduce": {"timings": ar, "fit": fit, "fit_by_ranks": fits_by_ranks},
              "prediction": {"network": {"latency_us": args.net_latency_us, "bandwidth_gbps": args.net_gbps},
                             "parameters": params, "compute": c, "assumptions": notes, "rows": rows}}
    json.dump(report, open(f"{args.out}/scaling.json", "w"), indent=2)

    md = runs_table(runs)
    if args.quick:
        md = (f"Quick mode: {args.quick_steps} steps per training run, test evaluation included in samples/s: these numbers "
              "exercise the pipeline, they are not a benchmark (run launch/scaling without --quick for that).\n\n") + md
    md += "\n## Allreduce micro-benchmark\n\n"
    md += (f"`disttrain bench-allreduce` at {', '.join(map(str, ar_ranks))} ranks: in-place float32 sum allreduce (the trainer's "
           f"MPI_Allreduce), {'/'.join(map(str, iterations))} timed iterations per size after warm-up, each the maximum over "
           f"ranks from leaving a barrier; median and minimum in microseconds. "
           + (f"Across the hosts of {args.hostfile}.\n\n" if args.hostfile else
              f"{args.cores} cores: ranks beyond them are oversubscribed.\n\n"))
    md += allreduce_table(ar, fit)
    md += (f"\nRing model T(n, p) = 2(p-1) alpha + 2(p-1)/p n beta fitted to the medians (least squares on relative residuals, "
           f"alpha and beta non-negative): **alpha = {fit['alpha_us']:.2f} us, 1/beta = {fit['beta_gbps']:.2f} GB/s**, "
           f"root mean square relative error {fit['rms_relative_error']:.2f} over {fit['timings']} timings. "
           + (f"Measured across the hosts of {args.hostfile}.\n" if args.hostfile else
              "Over shared memory (and with oversubscribed ranks) OpenMPI does not run a ring of links: the error shows how far "
              "this machine is from the model, and these figures describe this machine only.\n"))

    def oversubscribed(p):
        return not args.hostfile and args.cores and p > args.cores

    if len(fits_by_ranks) > 1:
        md += "\nFitted to each rank count alone: " + "; ".join(
            f"{f['ranks'][0]} ranks{' (oversubscribed)' if oversubscribed(f['ranks'][0]) else ''}: alpha = "
            f"{f['alpha_us']:.2f} us, 1/beta = {f['beta_gbps']:.2f} GB/s, error {f['rms_relative_error']:.2f}" for f in fits_by_ranks) + ".\n"
    md += f"\n## Predicted efficiency at {', '.join(map(str, PREDICT_RANKS))} ranks\n\n"
    md += (f"On a network of {args.net_latency_us:g} us latency and {args.net_gbps:g} GB/s per link, from the measured "
           "1-rank step. Assumptions:\n\n")
    md += "".join(f"- {n}\n" for n in notes)
    md += "\n" + prediction_table(rows)
    md += "\n![Measured samples/s and measured and predicted efficiency against ranks](scaling.svg)\n"
    open(f"{args.out}/scaling.md", "w").write(md)
    over = f"hollow: oversubscribed (more ranks than {args.cores} cores)" if args.cores else "hollow: oversubscribed"
    open(f"{args.out}/scaling.svg", "w").write(chart(runs, curve, over, args.quick))
    print(md)


if __name__ == "__main__":
    main()
