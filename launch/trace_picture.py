#!/usr/bin/env python3
"""Render a disttrain `--trace` file (Chrome trace-event JSON) as a PNG timeline.

One band per rank: its step phases on the upper lane, its gradient buckets' allreduces on the
lower lane (they overlap backward), each phase in its own colour, a millisecond axis below and
a legend. For the README's picture of a step trace where Perfetto's UI is not reachable.

    /opt/torch-venv/bin/python launch/trace_picture.py TRACE.json OUT.png [--width 1400] [--steps A-B] [--steps-only]

Needs pillow only. Exits 1 with one line on a file that is not a disttrain trace.
"""
import argparse
import json
import sys

from PIL import Image, ImageDraw, ImageFont

# Colours per event name (bucket events share one); chosen to tell the phases apart in print.
COLOURS = {
    "batch filling": (140, 140, 140),
    "forward": (66, 133, 244),
    "backward": (219, 68, 55),
    "allreduce wait": (244, 180, 0),
    "optimizer": (15, 157, 88),
    "parameter allgather": (171, 71, 188),
    "bucket allreduce": (255, 112, 67),
    "evaluation": (0, 172, 193),
    "checkpoint write": (121, 85, 72),
}


def phase_of(name):
    return "bucket allreduce" if name.startswith("bucket ") else name


EPOCH_END = ("evaluation", "checkpoint write")


def load(path, steps, steps_only=False):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"trace_picture: cannot read {path} as JSON: {e}")
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        sys.exit(f"trace_picture: {path} has no traceEvents list")
    names, spans = {}, []
    for e in events:
        if not isinstance(e, dict):
            continue
        if e.get("ph") == "M" and e.get("name") == "process_name":
            names[e["pid"]] = e.get("args", {}).get("name", f"rank {e['pid']}")
        elif e.get("ph") == "X":
            step = e.get("args", {}).get("step")
            if steps and step is not None and not (steps[0] <= step <= steps[1]):
                continue
            if steps_only and phase_of(e["name"]) in EPOCH_END:
                continue
            spans.append((e["pid"], e.get("tid", 0), phase_of(e["name"]), float(e["ts"]), float(e["dur"])))
    if not spans:
        sys.exit(f"trace_picture: {path} has no complete ('X') events{' in the chosen steps' if steps else ''}")
    return names, spans


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--steps", help="only steps A-B (the events' args.step)")
    ap.add_argument("--steps-only", action="store_true", help="leave out the epoch end (evaluation, checkpoint write)")
    a = ap.parse_args()
    steps = None
    if a.steps:
        try:
            lo, hi = (int(x) for x in a.steps.split("-"))
            steps = (lo, hi)
        except ValueError:
            sys.exit(f"trace_picture: --steps wants A-B, got {a.steps!r}")
    names, spans = load(a.trace, steps, a.steps_only)
    ranks = sorted({s[0] for s in spans})
    t0 = min(s[3] for s in spans)
    t1 = max(s[3] + s[4] for s in spans)
    font = ImageFont.load_default()
    left, right, top = 70, 20, 30
    lane, gap = 26, 14
    band = 2 * lane + gap
    axis_y = top + band * len(ranks)
    legend_y = axis_y + 40
    height = legend_y + 20 * ((len(COLOURS) + 4) // 5) + 10
    img = Image.new("RGB", (a.width, height), "white")
    d = ImageDraw.Draw(img)
    plot_w = a.width - left - right
    scale = plot_w / max(t1 - t0, 1e-9)
    d.text((left, 8), f"{a.trace.split('/')[-1]}: {len(ranks)} rank(s), {(t1 - t0) / 1000:.1f} ms shown "
                      "(upper lane: step phases, lower lane: gradient bucket allreduces)", fill="black", font=font)
    for i, rank in enumerate(ranks):
        y = top + i * band
        d.text((6, y + lane - 6), names.get(rank, f"rank {rank}"), fill="black", font=font)
        d.rectangle([left, y, left + plot_w, y + 2 * lane], outline=(220, 220, 220))
        for pid, tid, phase, ts, dur in spans:
            if pid != rank:
                continue
            x0 = left + (ts - t0) * scale
            x1 = max(x0 + 1, left + (ts + dur - t0) * scale)
            ly = y + (lane if tid == 1 else 0)
            d.rectangle([x0, ly + 2, x1, ly + lane - 2], fill=COLOURS.get(phase, (0, 0, 0)))
    # Axis: about 10 ticks at a round number of milliseconds.
    span_ms = (t1 - t0) / 1000
    step = 10 ** len(str(int(max(span_ms / 10, 1)))) / 10
    for mult in (1, 2, 5, 10):
        if span_ms / (step * mult) <= 12:
            step *= mult
            break
    d.line([left, axis_y, left + plot_w, axis_y], fill="black")
    k = 0
    while k * step <= span_ms + 1e-9:
        x = left + k * step * 1000 * scale
        d.line([x, axis_y, x, axis_y + 5], fill="black")
        d.text((x - 10, axis_y + 8), f"{k * step:g} ms", fill="black", font=font)
        k += 1
    for j, (name, colour) in enumerate(COLOURS.items()):
        x = left + (j % 5) * 250
        y = legend_y + (j // 5) * 20
        d.rectangle([x, y, x + 14, y + 12], fill=colour)
        d.text((x + 20, y), name, fill="black", font=font)
    img.save(a.out)
    print(f"wrote {a.out}: {len(spans)} events, {len(ranks)} rank(s), {span_ms:.1f} ms")


if __name__ == "__main__":
    main()
