"""The PyTorch side shared by launch/conv_benchmark.py and launch/time_to_quality.py: MNIST
reading, the disttrain recipe of a config, the training objective as one module, the
DistributedDataParallel (gloo) set-up with Adam, and the launcher that runs a training
function on R local processes and prints the JSON result rank 0 wrote. One copy, so that both
benchmarks time the same step against disttrain."""
import gzip
import json
import os
import struct


def read_idx(path):
    """An IDX file (gzipped or not) as a numpy uint8 array of its dimensions."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        (magic,) = struct.unpack(">I", f.read(4))
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        data = f.read()
    import numpy as np
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def mnist_tensors(data_dir, stem):
    """(x [n, 784] float32 pixels in [0, 1], y [n] int64 labels) of MNIST's `stem` set ("train" or "t10k")."""
    import numpy as np
    import torch
    images = read_idx(os.path.join(data_dir, f"{stem}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{stem}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255))
    return x, torch.from_numpy(labels.astype(np.int64))


def recipe(config):
    """The training recipe of a parsed disttrain config, with disttrain's defaults: global batch,
    kl_weight, Adam lr / betas / eps."""
    training, optimizer = config.get("training", {}), config.get("optimizer", {})
    return {"global_batch": int(training.get("global_batch", 256)), "kl_weight": float(training.get("kl_weight", 1.0)),
            "lr": float(optimizer.get("lr", 1e-3)), "beta1": float(optimizer.get("beta1", 0.9)),
            "beta2": float(optimizer.get("beta2", 0.999)), "eps": float(optimizer.get("eps", 1e-8))}


def loss_module(vae, beta, mse):
    """The training objective as one module (so DDP sees one call): reparameterized
    z = mean + exp(logvar / 2) eps, loss = mean over the batch of [sum over pixels of recon +
    beta KL]. Both benchmarks' step, and time_to_quality.py's test loss."""
    import torch
    import torch.nn.functional as F

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.vae = vae

        def forward(self, x, y):
            mean, logvar = self.vae.encode(x, y)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            logits = self.vae.decode(z, y)
            if mse:
                recon = (torch.sigmoid(logits) - x).square().sum(dim=1)
            else:
                recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
            kl = (-0.5 * (1 + logvar - mean * mean - logvar.exp())).sum(dim=1)
            return (recon + beta * kl).mean()

    return Step()


def start_rank(rank, world, threads):
    """This process's torch threads and, with several ranks, its place in the gloo process
    group (MASTER_ADDR / MASTER_PORT come from `run_ranks`). Returns torch.distributed or None."""
    import torch
    torch.set_num_threads(threads)
    if world == 1:
        return None
    import torch.distributed as dist
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    return dist


def objective_and_adam(model, recipe, mse, world):
    """(step module, Adam over its parameters) with the recipe's kl_weight and Adam settings;
    the step module wrapped in DistributedDataParallel when there are several ranks."""
    import torch
    step_net = loss_module(model, recipe["kl_weight"], mse)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        step_net = DistributedDataParallel(step_net)
    opt = torch.optim.Adam(step_net.parameters(), lr=recipe["lr"], betas=(recipe["beta1"], recipe["beta2"]),
                           eps=recipe["eps"])
    return step_net, opt


def run_ranks(train, args, prefix):
    """Runs train(rank, world, args, result_path) on args.ranks local processes (torch
    multiprocessing; in this process when 1) and prints the JSON that rank 0 wrote to
    result_path (a temporary file named with `prefix`, removed afterwards)."""
    import tempfile
    result = tempfile.mktemp(prefix=prefix, suffix=".json")
    if args.ranks > 1:
        import torch.multiprocessing as mp
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(29500 + os.getpid() % 1000)
        mp.spawn(train, args=(args.ranks, args, result), nprocs=args.ranks, join=True)
    else:
        train(0, 1, args, result)
    with open(result) as f:
        print(f.read())
    os.unlink(result)
