#!/usr/bin/env python3
"""PyTorch side of launch/time-to-quality, and its report.

  time_to_quality.py torch CONFIG --threads T [--ranks R] --launched UNIX_TIME --max-epochs E
                     --targets "100 95" [--batch-size B] [--data DIR]
      Trains the disttrain config's model (MLP or layer stack, built by examples/load_in_pytorch.py
      with disttrain's names and PyTorch's default init) with its recipe: global batch, Adam
      lr / betas / eps, kl_weight; each epoch one pass over a fresh permutation of the training
      set (the last partial batch dropped, as disttrain does), then the test loss: mean over all
      10,000 test images of reconstruction + kl_weight KL with one z sample each (disttrain's
      test_loss). R > 1 runs DistributedDataParallel over gloo with R processes on this host,
      the global batch split evenly and the test set split over ranks. Prints one JSON line per
      epoch with its wall time since --launched (the driver's clock before starting the job),
      and stops after the first epoch that reaches the lowest target, or at E epochs.

  time_to_quality.py report RUNS.jsonl --targets "100 95" --out DIR [--note TEXT]
      Writes DIR/time-to-quality.json and DIR/time-to-quality.md (the README table) and prints the md.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "launch"))
from torch_ddp import mnist_tensors, objective_and_adam, recipe, run_ranks, start_rank  # noqa: E402  shared with conv_benchmark.py


def model_and_recipe(path):
    """(model config for load_in_pytorch.build_model, recipe) from a disttrain config file."""
    with open(path) as f:
        config = json.load(f)
    model = dict(config["model"])
    model.setdefault("classes", 10)
    model.setdefault("conditioning", "none")
    model.setdefault("reconstruction", "bce")
    model.setdefault("activation", "relu")
    if model.get("latent_kind", "gaussian") != "gaussian":
        raise SystemExit(f"time_to_quality: {path}: only Gaussian latents have a PyTorch reference here")
    if isinstance(model.get("encoder"), list):
        if "input_shape" not in model:
            first = model["encoder"][0]["type"] if model["encoder"] else "linear"
            model["input_shape"] = [784] if first == "linear" else [1, 28, 28]
        n = 1
        for d in model["input_shape"]:
            n *= d
        model["input_dim"] = n
    else:
        model.setdefault("input_dim", 784)
    return model, recipe(config)


def train(rank, world, args, result_path):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(REPO, "examples"))
    from load_in_pytorch import build_model

    dist = start_rank(rank, world, args.threads)
    arch, recipe = model_and_recipe(args.config)
    if args.batch_size:
        recipe["global_batch"] = args.batch_size
    torch.manual_seed(0)
    model = build_model(arch).train()
    step_net, opt = objective_and_adam(model, recipe, arch["reconstruction"] == "mse", world)
    x_train, y_train = mnist_tensors(args.data, "train")
    x_test, y_test = mnist_tensors(args.data, "t10k")
    n = x_train.shape[0]
    local = recipe["global_batch"] // world
    steps = n // recipe["global_batch"]
    targets = sorted(args.targets, reverse=True)
    lines = []
    for epoch in range(1, args.max_epochs + 1):
        order = torch.from_numpy(np.random.default_rng(epoch).permutation(n))  # the same on every rank
        step_net.train()
        for s in range(steps):
            idx = order[s * recipe["global_batch"] + rank * local: s * recipe["global_batch"] + (rank + 1) * local]
            opt.zero_grad(set_to_none=True)
            loss = step_net(x_train[idx], y_train[idx])
            loss.backward()
            opt.step()
        step_net.eval()
        with torch.no_grad():
            share = slice(rank * len(x_test) // world, (rank + 1) * len(x_test) // world)
            total = torch.tensor([float(step_net(x_test[share], y_test[share]).double() * len(x_test[share]))],
                                 dtype=torch.float64)
            if dist:
                dist.all_reduce(total)
        test_loss = float(total) / len(x_test)
        line = {"epoch": epoch, "test_loss": test_loss, "seconds_since_launch": time.time() - args.launched}
        lines.append(line)
        if rank == 0:
            print(json.dumps(line), file=sys.stderr, flush=True)
        if test_loss <= targets[-1]:
            break
    if rank == 0:
        with open(result_path, "w") as f:
            json.dump({"epochs": lines, "global_batch": recipe["global_batch"], "ranks": world,
                       "threads_per_rank": args.threads, "torch": torch.__version__}, f)
    if dist:
        dist.destroy_process_group()


def torch_main(args):
    run_ranks(train, args, "time-to-quality-torch-")


def first_reaching(epochs, target):
    for e in epochs:
        if e["test_loss"] <= target:
            return e
    return None


def report(args):
    runs = [json.loads(line) for line in open(args.runs) if line.strip()]
    targets = sorted(args.targets, reverse=True)
    rounds = sorted({r.get("round", 1) for r in runs})
    key = lambda t: f"reach_{t:g}"  # noqa: E731

    def reached(r, t):
        hit = first_reaching(r["epochs"], t)
        return {"epoch": hit["epoch"], "seconds": hit["seconds_since_launch"]} if hit else None

    # One row per configuration: every round's result, and the median over the rounds that reached
    # the target (a configuration that missed it in any round counts as not reached).
    rows = []
    for name in dict.fromkeys(r["name"] for r in runs):
        mine = [r for r in runs if r["name"] == name]
        first = mine[0]
        row = {"name": name, "framework": first["framework"], "ranks": first["ranks"],
               "threads_per_rank": first["threads_per_rank"], "global_batch": first["global_batch"],
               "recipe": first["recipe"], "command": first["command"], "rounds": len(mine),
               "epochs_run": [len(r["epochs"]) for r in mine],
               "final_test_loss": [r["epochs"][-1]["test_loss"] if r["epochs"] else None for r in mine]}
        for t in targets:
            hits = [reached(r, t) for r in mine]
            row[key(t) + "_by_round"] = hits
            if all(hits):
                seconds = [h["seconds"] for h in hits]
                row[key(t)] = {"seconds": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
                               "epochs": sorted({h["epoch"] for h in hits})}
            else:
                row[key(t)] = None
        rows.append(row)

    def best(framework, recipe, t):
        times = [r[key(t)]["seconds"] for r in rows
                 if r["framework"] == framework and r["recipe"] == recipe and r[key(t)]]
        return min(times) if times else None

    def round_ratios(t):
        """Per round: the best PyTorch time over the best disttrain time (seed recipe, same round)."""
        out = []
        for n in rounds:
            def best_in_round(framework):
                ts = [reached(r, t)["seconds"] for r in runs if r.get("round", 1) == n and r["framework"] == framework
                      and r["recipe"] == "seed" and reached(r, t)]
                return min(ts) if ts else None
            ours, theirs = best_in_round("disttrain"), best_in_round("pytorch")
            if ours and theirs:
                out.append(theirs / ours)
        return out

    ratios = {}
    for t in targets:
        ours, theirs = best("disttrain", "seed", t), best("pytorch", "seed", t)
        ratios[f"{t:g}"] = {"median_over_medians": theirs / ours if ours and theirs else None, "by_round": round_ratios(t)}

    def cell(hit):
        if not hit:
            return "not reached"
        epochs = "/".join(str(e) for e in hit["epochs"])
        spread = f" ({hit['min']:.1f}-{hit['max']:.1f})" if hit["min"] != hit["max"] else ""
        return f"{hit['seconds']:.1f} s{spread}, epoch {epochs}"
    head = ("| configuration | recipe | global batch | " + " | ".join(f"to test loss <= {t:g}" for t in targets)
            + " | epochs run (last test loss), by round |")
    lines = [head, "|---|---|---|" + "---|" * len(targets) + "---|"]
    for r in rows:
        finals = "; ".join(f"{e} ({l:.2f})" for e, l in zip(r["epochs_run"], r["final_test_loss"]) if l is not None)
        lines.append(f"| {r['name']} | {r['recipe']} | {r['global_batch']} | "
                     + " | ".join(cell(r[key(t)]) for t in targets) + f" | {finals} |")
    summary = []
    for t in targets:
        ratio = ratios[f"{t:g}"]
        ours, theirs = best("disttrain", "seed", t), best("pytorch", "seed", t)
        spread = ""
        if len(ratio["by_round"]) > 1:
            spread = " Per round (best of each side in that round): " + ", ".join(f"{x:.2f}x" for x in ratio["by_round"]) + "."
        seconds = lambda x: f"{x:.1f} s" if x else "not reached"  # noqa: E731
        summary.append(f"To test loss <= {t:g} with the seed recipe: best disttrain {seconds(ours)}, "
                       f"best PyTorch {seconds(theirs)}"
                       + (" (medians)" if len(rounds) > 1 else "") + ": "
                       + (f"disttrain {ratio['median_over_medians']:.2f}x sooner (goal 1.6x)." if ratio["median_over_medians"]
                          else "no ratio (a side did not reach it in every round).") + spread)
    for r in [r for r in rows if r["recipe"] != "seed"]:
        same = [s for s in rows if s["recipe"] == "seed" and s["framework"] == r["framework"] and s["ranks"] == r["ranks"]
                and s["threads_per_rank"] == r["threads_per_rank"]]
        t = targets[0]
        if same and r[key(t)] and same[0][key(t)]:
            a, b = r[key(t)]["seconds"], same[0][key(t)]["seconds"]
            summary.append(f"{r['name']} ({r['recipe']}, global batch {r['global_batch']}) reached {t:g} in {a:.1f} s against "
                           f"{b:.1f} s for the seed recipe on the same ranks: {'sooner' if a < b else 'later'} ({b / a:.2f}x).")
        elif same:
            summary.append(f"{r['name']} ({r['recipe']}): "
                           + ("did not reach " if not r[key(t)] else "the seed recipe on the same ranks did not reach ")
                           + f"{t:g} within the epochs run.")
    meta = {"host": platform.node(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_at_report": os.getloadavg(), "targets": targets, "rounds": len(rounds), "note": args.note}
    order = ("configurations run one after another in the order listed"
             if len(rounds) == 1 else
             f"{len(rounds)} rounds, each running every configuration once in the order listed; a cell is the median "
             "over the rounds (range in brackets) and the epoch(s) at which the target was reached")
    md = ["# Time to quality: disttrain vs PyTorch", "",
          f"`launch/time-to-quality` on {meta['cores']} cores, {meta['date']} (load average at the end "
          f"{meta['load_average_at_report'][0]:.1f}). Wall time from launching the job (before mpirun or python starts) "
          "to the end of the first epoch whose test loss (one z sample per test image, all 10,000) is at or below "
          f"the target; {order}. `seed` is configs/cvae.json's "
          "recipe on both sides (global batch 256, Adam 1e-3); PyTorch is the pip build, DDP over gloo.", ""] + lines + [""] + summary + [""]
    if args.note:
        md += [args.note, ""]
    md += ["Commands:", ""] + [f"- {r['name']}: `{r['command']}`" for r in rows] + [""]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "time-to-quality.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(args.out, "time-to-quality.json"), "w") as f:
        json.dump({"meta": meta, "ratios_seed_recipe": ratios, "rows": rows, "runs": runs}, f, indent=1)
        f.write("\n")
    print("\n".join(md))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("torch")
    t.add_argument("config")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--ranks", type=int, default=1)
    t.add_argument("--launched", type=float, required=True, help="unix time the driver launched this job")
    t.add_argument("--max-epochs", type=int, default=30)
    t.add_argument("--targets", type=lambda s: [float(x) for x in s.split()], default=[100.0, 95.0])
    t.add_argument("--batch-size", type=int, default=0)
    t.add_argument("--data", default=os.path.join(REPO, "data", "mnist"))
    r = sub.add_parser("report")
    r.add_argument("runs")
    r.add_argument("--targets", type=lambda s: [float(x) for x in s.split()], default=[100.0, 95.0])
    r.add_argument("--out", default=os.path.join(REPO, "bench"))
    r.add_argument("--note", default="")
    args = parser.parse_args()
    if args.command == "torch":
        torch_main(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
