#!/usr/bin/env python3
"""Loads a disttrain checkpoint into a plain PyTorch module and computes its test loss.

usage: load_in_pytorch.py CHECKPOINT [--count N] [--data DIR] [--kl-weight B] [--compare VALUE]

CHECKPOINT is a checkpoint directory (holding model.safetensors), a model.safetensors file,
or a run directory (its checkpoints/latest is used).

The model is rebuilt from the checkpoint's own metadata (`__metadata__["config"]`), so any
disttrain VAE/CVAE loads, and the safetensors file is parsed here with struct + json + numpy
(the `safetensors` package is not needed; when it is installed, its reading is cross-checked).

The loss is deterministic: z is the posterior mean (no sampling noise), on the first N test
images of MNIST (data/mnist/t10k-*-ubyte.gz), in float32:

    loss = mean over images of [ sum over pixels of BCE-with-logits(decoder([mean | one-hot]), x)
                                 + kl_weight * KL(N(mean, exp(logvar)) || N(0, I)) ]

with x = pixels / 255. It prints {"loss": ..., "bce": ..., "kl": ..., "count": N} (bce and kl
are per-image means). With --compare VALUE it exits 1 if |loss - VALUE| > 1e-4 * |VALUE|.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

FORMAT = "disttrain.vae.v1"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- safetensors, by hand -------------------------------------------------------------------

def read_safetensors(path):
    """(tensors by name in header order, metadata dict). Little-endian F32/F16/BF16/F64 only."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a safetensors file")
    (header_len,) = struct.unpack_from("<Q", data, 0)
    if header_len > len(data) - 8:
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    start = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        dtype, shape = entry["dtype"], [int(d) for d in entry["shape"]]
        begin, end = (int(o) for o in entry["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        sizes = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
        if dtype not in sizes:
            raise ValueError(f"{path}: tensor {name}: dtype {dtype} is not a float type")
        if end - begin != count * sizes[dtype] or start + end > len(data):
            raise ValueError(f"{path}: tensor {name}: offsets [{begin}, {end}] do not fit shape {shape} of {dtype}")
        raw = np.frombuffer(data, dtype=np.uint8, count=end - begin, offset=start + begin)
        if dtype == "BF16":
            values = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            values = raw.view({"F32": "<f4", "F16": "<f2", "F64": "<f8"}[dtype]).astype(np.float32)
        tensors[name] = torch.from_numpy(values.reshape(shape).copy())
    return tensors, metadata


def check_with_safetensors_package(path, tensors):
    """If the optional `safetensors` package is installed, its reading must agree with ours."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        return False
    theirs = load_file(path)
    if set(theirs) != set(tensors) or any(not torch.equal(theirs[k].float(), tensors[k]) for k in tensors):
        raise ValueError(f"{path}: the safetensors package reads different tensors")
    return True


# --- The model ------------------------------------------------------------------------------

def activation(config):
    if config.get("activation", "relu") == "leaky_relu":
        slope = float(config.get("leaky_slope", 0.2))
        return lambda h: F.leaky_relu(h, slope)
    if config.get("activation", "relu") != "relu":
        raise ValueError(f"unknown activation {config['activation']!r}")
    return F.relu


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config["input_dim"] + (config["classes"] if config["conditioning"] == "both" else 0)
        self.layers = nn.ModuleList()
        for hidden in config["encoder_hidden"]:
            self.layers.append(nn.Linear(width, hidden))
            width = hidden
        self.mean = nn.Linear(width, config["latent"])
        self.logvar = nn.Linear(width, config["latent"])
        self.act = activation(config)

    def forward(self, x):
        for layer in self.layers:
            x = self.act(layer(x))
        return self.mean(x), self.logvar(x)


class Decoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config["latent"] + (config["classes"] if config["conditioning"] != "none" else 0)
        self.layers = nn.ModuleList()
        for hidden in config["decoder_hidden"]:
            self.layers.append(nn.Linear(width, hidden))
            width = hidden
        self.out = nn.Linear(width, config["input_dim"])
        self.act = activation(config)

    def forward(self, z):
        for layer in self.layers:
            z = self.act(layer(z))
        return self.out(z)  # logits; sigmoid gives pixel probabilities


class DisttrainVAE(nn.Module):
    """disttrain's MLP VAE/CVAE with its tensor names: encoder.layers.{i}, encoder.mean,
    encoder.logvar, decoder.layers.{i}, decoder.out (nn.Linear: weight [out, in], bias [out])."""

    def __init__(self, config):
        super().__init__()
        if config["conditioning"] not in ("both", "decoder", "none"):
            raise ValueError(f"unknown conditioning {config['conditioning']!r}")
        self.config = dict(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def one_hot(self, labels):
        return F.one_hot(labels.long(), self.config["classes"]).float()

    def encode(self, x, labels):
        if self.config["conditioning"] == "both":
            x = torch.cat([x, self.one_hot(labels)], dim=1)
        return self.encoder(x)

    def decode(self, z, labels):
        if self.config["conditioning"] != "none":
            z = torch.cat([z, self.one_hot(labels)], dim=1)
        return self.decoder(z)

    def deterministic_loss_terms(self, x, labels):
        """Per-image (bce, kl) with z = posterior mean."""
        mean, logvar = self.encode(x, labels)
        logits = self.decode(mean, labels)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        kl = (-0.5 * (1 + logvar - mean * mean - logvar.exp())).sum(dim=1)
        return bce, kl


def model_config(metadata, path):
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise ValueError(f"{path}: not a disttrain model (metadata format {metadata.get('format')!r})")
    config = json.loads(metadata["config"])
    keys = ["input_dim", "classes", "conditioning", "encoder_hidden", "decoder_hidden", "latent", "activation"]
    missing = [k for k in keys if k not in config]
    if missing:
        raise ValueError(f"{path}: model config lacks {missing}")
    return config


def load_model(path):
    """The module with the checkpoint's weights, and whether the safetensors package agreed."""
    tensors, metadata = read_safetensors(path)
    model = DisttrainVAE(model_config(metadata, path))
    model.load_state_dict(tensors, strict=True)  # names and shapes must match exactly
    return model.eval(), check_with_safetensors_package(path, tensors)


def resolve_checkpoint(path):
    if os.path.isfile(path):
        return path
    latest = os.path.join(path, "checkpoints", "latest")
    if not os.path.exists(os.path.join(path, "model.safetensors")) and os.path.isfile(latest):
        with open(latest) as f:
            path = os.path.join(path, "checkpoints", f.read().strip())
    return os.path.join(path, "model.safetensors")


# --- MNIST ----------------------------------------------------------------------------------

def read_idx(path, magic, count):
    """The first `count` records of an IDX file (gzip or raw) as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        (found,) = struct.unpack(">I", f.read(4))
        if found != magic:
            raise ValueError(f"{path}: magic {found:#x}, expected {magic:#x}")
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        if count > dims[0]:
            raise ValueError(f"{path}: {dims[0]} records, {count} requested")
        per = int(np.prod(dims[1:], dtype=np.int64)) if len(dims) > 1 else 1
        raw = f.read(count * per)
        if len(raw) != count * per:
            raise ValueError(f"{path}: truncated")
        return np.frombuffer(raw, dtype=np.uint8).reshape((count,) + tuple(dims[1:]))


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="checkpoint directory, model.safetensors file, or run directory")
    parser.add_argument("--count", type=int, default=10000, help="first N test images (default: all 10000)")
    parser.add_argument("--data", default=os.path.join(REPO, "data", "mnist"), help="directory of the MNIST IDX files")
    parser.add_argument("--kl-weight", type=float, default=1.0, help="weight of the KL term in loss (default 1)")
    parser.add_argument("--compare", type=float, help="exit 1 unless loss is within 1e-4 (relative) of this")
    args = parser.parse_args()

    path = resolve_checkpoint(args.checkpoint)
    try:
        model, cross_checked = load_model(path)
        images = read_idx(find(args.data, "t10k-images-idx3-ubyte"), 0x00000803, args.count)
        labels = read_idx(find(args.data, "t10k-labels-idx1-ubyte"), 0x00000801, args.count)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        print(f"load_in_pytorch: error: {error}", file=sys.stderr)
        return 2
    config = model.config
    if images.shape[1] * images.shape[2] != config["input_dim"]:
        print(f"load_in_pytorch: error: images have {images.shape[1] * images.shape[2]} pixels, "
              f"the model {config['input_dim']}", file=sys.stderr)
        return 2

    x = torch.from_numpy(images.reshape(args.count, -1).astype(np.float32) / np.float32(255))
    y = torch.from_numpy(labels.astype(np.int64))
    with torch.no_grad():
        bce, kl = model.deterministic_loss_terms(x, y)
    # float32 per image, summed in float64 (as disttrain sums its epoch totals).
    bce_mean = float(bce.double().sum()) / args.count
    kl_mean = float(kl.double().sum()) / args.count
    loss = bce_mean + args.kl_weight * kl_mean
    result = {"loss": loss, "bce": bce_mean, "kl": kl_mean, "count": args.count}
    print(json.dumps(result))
    print(f"load_in_pytorch: {path}: {sum(p.numel() for p in model.parameters())} parameters, "
          f"conditioning {config['conditioning']}, torch {torch.__version__}"
          + (", safetensors package agrees" if cross_checked else ""), file=sys.stderr)

    if args.compare is not None:
        tolerance = 1e-4 * abs(args.compare)
        if not abs(loss - args.compare) <= tolerance:
            print(f"load_in_pytorch: MISMATCH: PyTorch loss {loss:.6f}, expected {args.compare:.6f} "
                  f"(difference {abs(loss - args.compare):.3g} > {tolerance:.3g})", file=sys.stderr)
            return 1
        print(f"load_in_pytorch: matches {args.compare:.6f} (difference {abs(loss - args.compare):.3g})",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
