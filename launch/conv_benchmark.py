#!/usr/bin/env python3
"""PyTorch side of launch/conv-benchmark, and its report.

  conv_benchmark.py torch CONFIG --steps N --threads T [--ranks R] [--data DIR]
      Trains the disttrain config's layer-stack model in PyTorch with its recipe (global batch,
      Adam lr / betas / eps, kl_weight, reconstruction) for N steps on MNIST and prints one JSON
      line: {"samples_per_s": ..., "seconds": ..., "steps": N, ...}. R > 1 runs DistributedDataParallel
      over gloo with R processes on this host, T threads each, the global batch split evenly.
      The model is examples/load_in_pytorch.py's DisttrainStackVAE (same layers, same names,
      PyTorch's default init); the step is: reparameterized z = mean + exp(logvar / 2) eps,
      loss = mean over the batch of [sum over pixels of recon + kl_weight KL], backward, Adam.
      samples_per_s leaves out the first --warmup steps (default 2: oneDNN primitive creation),
      which favours PyTorch: disttrain's figure counts every step; samples_per_s_all_steps
      counts every step too. Data (batch gathering) is included, no evaluation.

  conv_benchmark.py report RUNS.jsonl --out DIR [--note TEXT]
      Writes DIR/conv-benchmark.json and DIR/conv-benchmark.md and prints the table.
"""
import argparse
import json
import os
import platform
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "launch"))
from torch_ddp import mnist_tensors, objective_and_adam, recipe, run_ranks, start_rank  # noqa: E402  shared with time_to_quality.py


def stack_config(path):
    """(architecture config for DisttrainStackVAE, recipe) from a disttrain config file."""
    with open(path) as f:
        config = json.load(f)
    model = dict(config["model"])
    if not isinstance(model.get("encoder"), list):
        raise SystemExit(f"conv_benchmark: {path}: not a layer-stack model (no encoder list)")
    model.setdefault("classes", 10)
    model.setdefault("conditioning", "none")
    model.setdefault("reconstruction", "bce")
    model.setdefault("latent_kind", "gaussian")
    if "input_shape" not in model:
        first = model["encoder"][0]["type"] if model["encoder"] else "linear"
        model["input_shape"] = [784] if first == "linear" else [1, 28, 28]
    return model, dict(recipe(config), sync_bn=config.get("runtime", {}).get("batchnorm", "sync") != "local")


def train(rank, world, args, result_path):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(REPO, "examples"))
    from load_in_pytorch import DisttrainStackVAE

    dist = start_rank(rank, world, args.threads)
    arch, recipe = stack_config(args.config)
    torch.manual_seed(0)
    model = DisttrainStackVAE(arch).train()
    # PyTorch's SyncBatchNorm runs on GPU modules only ("SyncBatchNorm layers only work with GPU
    # modules"): DDP here keeps per-rank BatchNorm statistics, while disttrain syncs them (one
    # more allreduce per BN layer and pass, unless runtime.batchnorm is local). That favours PyTorch.
    sync_bn = False

    x_all, y_all = mnist_tensors(args.data, "train")
    n = x_all.shape[0]
    batch = recipe["global_batch"] // world
    rng = np.random.default_rng(rank)
    step_net, opt = objective_and_adam(model, recipe, arch["reconstruction"] == "mse", world)
    if world > 1:
        dist.barrier()
    started = time.perf_counter()
    warm = None  # after the warm-up steps (oneDNN primitive creation, allocator growth)
    loss = None
    for i in range(args.steps):
        if i == args.warmup:
            warm = time.perf_counter()
        idx = torch.from_numpy(rng.integers(0, n, size=batch))
        x, y = x_all[idx], y_all[idx]
        opt.zero_grad(set_to_none=True)
        loss = step_net(x, y)
        loss.backward()
        opt.step()
    if world > 1:
        dist.barrier()
    ended = time.perf_counter()
    seconds = ended - started
    if rank == 0:
        steady = (args.steps - args.warmup) * recipe["global_batch"] / (ended - warm) if warm else None
        with open(result_path, "w") as f:
            json.dump({"samples_per_s": steady or args.steps * recipe["global_batch"] / seconds,
                       "samples_per_s_all_steps": args.steps * recipe["global_batch"] / seconds, "seconds": seconds,
                       "warmup_steps_excluded": args.warmup if warm else 0, "steps": args.steps, "global_batch": recipe["global_batch"], "ranks": world,
                       "threads_per_rank": args.threads, "last_loss": float(loss.detach()), "sync_bn": sync_bn,
                       "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}, f)
    if world > 1:
        dist.destroy_process_group()


def torch_main(args):
    run_ranks(train, args, "conv-benchmark-torch-")


def report(args):
    runs = [json.loads(line) for line in open(args.runs) if line.strip()]
    table = {}
    for r in runs:
        table.setdefault((r["model"], r["ranks"], r["threads_per_rank"]), {}).setdefault(r["framework"], []).append(r)
    rows = []
    for (model, ranks, threads), by in sorted(table.items()):
        ours = [r["samples_per_s"] for r in by.get("disttrain", [])]
        theirs = [r["samples_per_s"] for r in by.get("pytorch", [])]
        best_ours, best_theirs = (max(ours) if ours else None), (max(theirs) if theirs else None)
        rows.append({"model": model, "ranks": ranks, "threads_per_rank": threads,
                     "global_batch": (by.get("disttrain") or by.get("pytorch"))[0]["global_batch"],
                     "disttrain_samples_per_s": ours, "pytorch_samples_per_s": theirs,
                     "ratio_best": (best_ours / best_theirs) if ours and theirs else None})
    lines = ["| model | ranks x threads | global batch | disttrain samples/s | PyTorch samples/s | ratio disttrain / PyTorch (best of each) |",
             "|---|---|---|---|---|---|"]
    fmt = lambda xs: " / ".join(f"{x:.0f}" for x in xs) or "-"  # noqa: E731
    for r in rows:
        ratio = f"{r['ratio_best']:.2f}" if r["ratio_best"] is not None else "-"
        lines.append(f"| {r['model']} | {r['ranks']} x {r['threads_per_rank']} | {r['global_batch']} | "
                     f"{fmt(r['disttrain_samples_per_s'])} | {fmt(r['pytorch_samples_per_s'])} | {ratio} |")
    meta = {"host": platform.node(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_at_report": os.getloadavg(), "note": args.note}
    torch_versions = sorted({r.get("torch") for r in runs if r.get("torch")})
    md = ["# Conv benchmark: disttrain vs PyTorch", "",
          f"`launch/conv-benchmark` on {meta['cores']} cores, {meta['date']}; PyTorch {', '.join(torch_versions)} "
          "(pip, oneDNN convolutions). Training-loop samples/s (data included, "
          "evaluation excluded; PyTorch's leaves out its first 2 warm-up steps, disttrain's counts every step), runs interleaved: disttrain, PyTorch, disttrain, PyTorch ... per setting. "
          "Several values in a cell are the repeats, in run order. At 2 ranks disttrain syncs BatchNorm "
          "statistics across ranks; PyTorch's DDP keeps them per rank (SyncBatchNorm is GPU-only), less work.", ""] + lines + [""]
    if args.note:
        md += [args.note, ""]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "conv-benchmark.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(args.out, "conv-benchmark.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "runs": runs}, f, indent=1)
        f.write("\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("torch")
    t.add_argument("config")
    t.add_argument("--steps", type=int, default=40)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--ranks", type=int, default=1)
    t.add_argument("--warmup", type=int, default=2, help="steps left out of samples_per_s (default 2)")
    t.add_argument("--data", default=os.path.join(REPO, "data", "mnist"))
    r = sub.add_parser("report")
    r.add_argument("runs")
    r.add_argument("--out", default=os.path.join(REPO, "bench"))
    r.add_argument("--note", default="")
    args = parser.parse_args()
    if args.command == "torch":
        torch_main(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
