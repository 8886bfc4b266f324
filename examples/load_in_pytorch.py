#!/usr/bin/env python3
"""Loads a disttrain checkpoint into a plain PyTorch module and computes its test loss.

usage: load_in_pytorch.py CHECKPOINT [--count N] [--data DIR] [--kl-weight B] [--compare VALUE]

CHECKPOINT is a checkpoint directory (holding model.safetensors), a model.safetensors file,
or a run directory (its checkpoints/latest is used).

The model is rebuilt from the checkpoint's own metadata (`__metadata__["config"]`), so any
disttrain VAE/CVAE loads, and the safetensors file is parsed here with struct + json + numpy
(the `safetensors` package is not needed; when it is installed, its reading is cross-checked).
Two model forms:
  - MLP (config keys encoder_hidden / decoder_hidden / activation): nn.Linear layers named
    encoder.layers.{i}, encoder.mean, encoder.logvar, decoder.layers.{i}, decoder.out.
  - Layer stacks (config keys input_shape / encoder / decoder, lists of layer objects:
    linear, conv2d, conv_transpose2d, batchnorm, dropout, relu, leaky_relu, tanh, sigmoid,
    flatten, reshape): encoder.layers and decoder.layers are nn.Sequential (tensor names
    encoder.layers.{i}.<param>, i counting every layer), BatchNorm state (running_mean,
    running_var, num_batches_tracked as I64) loaded with the parameters. The one-hot label
    joins the encoder at its input for a flat input ([x | y]), otherwise after the first
    layer whose output is flat (after a flatten added at the end if none is); the heads
    encoder.mean / encoder.logvar read the flat features. A `residual` layer is x + block(x)
    (its inner layers NAME.block.{j}).
  - VQ-VAE (latent_kind "vq", seed 001): encoder.layers ends at z_e [D, H, W]; each position
    takes its nearest code of quantizer.embedding.weight [K, D] (nn.Embedding); the decoder
    reads z_q flattened. Its "kl" is the codebook + commitment loss (1 + commitment)
    |z_e - z_q|^2 summed per image, the number disttrain's eval reports as kl.

The loss is deterministic: z is the posterior mean (no sampling noise), the module in eval
mode (BatchNorm uses its running statistics, dropout is off), on the first N test images of
MNIST (data/mnist/t10k-*-ubyte.gz), in float32:

    loss = mean over images of [ sum over pixels of recon(decoder([mean | one-hot]), x)
                                 + kl_weight * KL(N(mean, exp(logvar)) || N(0, I)) ]

with x = pixels / 255 and recon BCE-with-logits (reconstruction "bce"; the default, and what an
MLP checkpoint without the key is) or (sigmoid(logits) - x)^2 (reconstruction "mse"). It prints {"loss": ..., "bce": ...,
"kl": ..., "count": N} (bce, the reconstruction term whichever it is, and kl are per-image
means). With --compare VALUE it exits 1 if |loss - VALUE| > 1e-4 * |VALUE|.
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
    """(tensors by name in header order, metadata dict). Little-endian F32/F16/BF16/F64 (read
    as float32) and I64/I32 (read as int64: BatchNorm's num_batches_tracked) only."""
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
        sizes = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4}
        if dtype not in sizes:
            raise ValueError(f"{path}: tensor {name}: dtype {dtype} is not a float or integer type this reader knows")
        if end - begin != count * sizes[dtype] or start + end > len(data):
            raise ValueError(f"{path}: tensor {name}: offsets [{begin}, {end}] do not fit shape {shape} of {dtype}")
        raw = np.frombuffer(data, dtype=np.uint8, count=end - begin, offset=start + begin)
        if dtype in ("I64", "I32"):
            values = raw.view({"I64": "<i8", "I32": "<i4"}[dtype]).astype(np.int64)
        elif dtype == "BF16":
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
    if set(theirs) != set(tensors) or any(not torch.equal(theirs[k].to(tensors[k].dtype), tensors[k]) for k in tensors):
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


# --- Layer-stack models ---------------------------------------------------------------------

class Reshape(nn.Module):
    """Rows to the given per-row shape (no parameters; a position in nn.Sequential's count)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x):
        return x.reshape((x.shape[0],) + self.shape)

    def extra_repr(self):
        return f"shape={list(self.shape)}"


class Residual(nn.Module):
    """y = x + block(x): disttrain's `residual` layer (its inner layers are NAME.block.{i})."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)


class FlatLinear(nn.Linear):
    """nn.Linear over the flattened row (disttrain's Linear reads a row whatever its shape)."""

    def forward(self, x):
        return super().forward(x.flatten(1))


def count(shape):
    return int(np.prod(shape, dtype=np.int64))


def build_layer(spec, shape):
    """(module, output shape) of one layer object on per-row input `shape` ([C, H, W] or [F])."""
    kind = spec.get("type")
    if kind == "linear":
        return FlatLinear(count(shape), int(spec["out"])), [int(spec["out"])]
    if kind in ("conv2d", "conv_transpose2d"):
        if len(shape) != 3:
            raise ValueError(f"{kind} needs a [C, H, W] input, got {shape}")
        k, s, p = int(spec["kernel"]), int(spec.get("stride", 1)), int(spec.get("padding", 0))
        c, h, w = shape
        out = int(spec["out"])
        if kind == "conv2d":
            return nn.Conv2d(c, out, k, stride=s, padding=p), [out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1]
        op = int(spec.get("output_padding", 0))
        side = lambda n: (n - 1) * s - 2 * p + k + op  # noqa: E731
        return nn.ConvTranspose2d(c, out, k, stride=s, padding=p, output_padding=op), [out, side(h), side(w)]
    if kind == "batchnorm":
        if len(shape) == 3:
            return nn.BatchNorm2d(shape[0], eps=1e-5, momentum=0.1), shape
        return nn.BatchNorm1d(count(shape), eps=1e-5, momentum=0.1), shape
    if kind == "dropout":
        return nn.Dropout(float(spec["p"])), shape
    if kind == "relu":
        return nn.ReLU(), shape
    if kind == "leaky_relu":
        return nn.LeakyReLU(float(spec.get("slope", 0.01))), shape
    if kind == "tanh":
        return nn.Tanh(), shape
    if kind == "sigmoid":
        return nn.Sigmoid(), shape
    if kind == "flatten":
        return nn.Flatten(), [count(shape)]
    if kind == "reshape":
        target = [int(d) for d in spec["shape"]]
        if count(target) != count(shape):
            raise ValueError(f"reshape {target} of a {shape} input: {count(target)} values, not {count(shape)}")
        return Reshape(target), target
    if kind == "residual":
        block, shapes = build_stack(spec["block"], shape)
        if shapes and shapes[-1] != list(shape):
            raise ValueError(f"residual block maps {shape} to {shapes[-1]}")
        return Residual(block), list(shape)
    raise ValueError(f"unknown layer type {kind!r}")


def build_stack(specs, shape):
    """(nn.Sequential, per-layer output shapes)."""
    modules, shapes = [], []
    for i, spec in enumerate(specs):
        try:
            module, shape = build_layer(spec, shape)
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"layer {i} {json.dumps(spec)}: {error}") from None
        modules.append(module)
        shapes.append(shape)
    return nn.Sequential(*modules), shapes


class StackEncoder(nn.Module):
    """encoder.layers (nn.Sequential), the label join, encoder.mean and encoder.logvar.
    `classes` > 0: the one-hot label joins after the first layer whose output is flat (or after
    the whole stack, flattened); a label joining at the input is the caller's (classes 0)."""

    def __init__(self, config, input_shape, classes):
        super().__init__()
        modules, shape = [], list(input_shape)
        self.classes, self.join_after = classes, None
        for i, spec in enumerate(config["encoder"]):
            try:
                module, shape = build_layer(spec, shape)
            except (KeyError, ValueError, TypeError) as error:
                raise ValueError(f"encoder layer {i} {json.dumps(spec)}: {error}") from None
            modules.append(module)
            if classes and self.join_after is None and len(shape) == 1:
                self.join_after, shape = i, [shape[0] + classes]
        if classes and self.join_after is None:
            self.join_after, shape = len(modules) - 1, [count(shape) + classes]
        self.layers = nn.Sequential(*modules)
        latent = int(config["latent"])
        self.mean = nn.Linear(count(shape), latent)
        self.logvar = nn.Linear(count(shape), latent)

    def forward(self, x, label):
        if self.classes and self.join_after == -1:
            x = torch.cat([x.flatten(1), label], dim=1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.classes and i == self.join_after:
                x = torch.cat([x.flatten(1), label], dim=1)
        x = x.flatten(1)
        return self.mean(x), self.logvar(x)


class StackDecoder(nn.Module):
    def __init__(self, config, width):
        super().__init__()
        self.layers, self.shapes = build_stack(config["decoder"], [width])

    def forward(self, z):
        return self.layers(z)


class DisttrainStackVAE(nn.Module):
    """disttrain's layer-stack VAE/CVAE (conv, transposed conv, BatchNorm, dropout, ...)."""

    def __init__(self, config):
        super().__init__()
        if config["conditioning"] not in ("both", "decoder", "none"):
            raise ValueError(f"unknown conditioning {config['conditioning']!r}")
        if config.get("latent_kind", "gaussian") != "gaussian":
            raise ValueError(f"latent_kind {config['latent_kind']!r}: only gaussian is rebuilt here")
        if config.get("reconstruction", "bce") not in ("bce", "mse"):
            raise ValueError(f"unknown reconstruction {config['reconstruction']!r}")
        self.config = dict(config)
        input_shape = [int(d) for d in config["input_shape"]]
        encoder = config["encoder"]
        # A flat input ([P], or [P, 1, 1] as disttrain writes it) and a linear-first stack read
        # the flat pixel vector (the label joins it: [x | y]).
        flat_input = (len(input_shape) == 1 or (len(input_shape) == 3 and input_shape[1:] == [1, 1])
                      or bool(encoder and encoder[0].get("type") == "linear"))
        self.input_shape = [count(input_shape)] if flat_input else input_shape
        classes = int(config["classes"]) if config["conditioning"] == "both" else 0
        if flat_input and classes:  # [x | y] at the input
            self.encoder = StackEncoder(config, [self.input_shape[0] + classes], 0)
        else:
            self.encoder = StackEncoder(config, self.input_shape, classes)
        width = int(config["latent"]) + (int(config["classes"]) if config["conditioning"] != "none" else 0)
        self.decoder = StackDecoder(config, width)
        out = self.decoder.shapes[-1] if self.decoder.shapes else [width]
        if count(out) != count(input_shape):
            raise ValueError(f"decoder ends at {out} ({count(out)} values), the input has {count(input_shape)}")

    def one_hot(self, labels):
        return F.one_hot(labels.long(), self.config["classes"]).float()

    def encode(self, x, labels):
        """x: [B, P] pixels in [0, 1]."""
        x = x.reshape([x.shape[0]] + self.input_shape)
        if self.config["conditioning"] == "both" and len(self.input_shape) == 1:
            return self.encoder(torch.cat([x, self.one_hot(labels)], dim=1), None)
        label = self.one_hot(labels) if self.config["conditioning"] == "both" else None
        return self.encoder(x, label)

    def decode(self, z, labels):
        if self.config["conditioning"] != "none":
            z = torch.cat([z, self.one_hot(labels)], dim=1)
        return self.decoder(z).flatten(1)

    def deterministic_loss_terms(self, x, labels):
        """Per-image (reconstruction, kl) with z = posterior mean."""
        mean, logvar = self.encode(x, labels)
        logits = self.decode(mean, labels)
        if self.config.get("reconstruction", "bce") == "mse":
            recon = (torch.sigmoid(logits) - x).square().sum(dim=1)
        else:
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        kl = (-0.5 * (1 + logvar - mean * mean - logvar.exp())).sum(dim=1)
        return recon, kl


class VQEncoder(nn.Module):
    def __init__(self, config, input_shape):
        super().__init__()
        self.layers, self.shapes = build_stack(config["encoder"], input_shape)

    def forward(self, x):
        return self.layers(x)


class Quantizer(nn.Module):
    """The codebook as nn.Embedding(K, D): quantizer.embedding.weight."""

    def __init__(self, codes, dimension, ema=False, restart=False):
        super().__init__()
        self.embedding = nn.Embedding(codes, dimension)
        if ema:  # an EMA codebook's statistics (state, saved with the model)
            self.embedding.weight.requires_grad_(False)
            self.register_buffer("cluster_size", torch.zeros(codes))
            self.register_buffer("embed_sum", torch.zeros(codes, dimension))
        if restart:  # dead-code restart: training forwards since each code was last chosen
            self.register_buffer("steps_unused", torch.zeros(codes))

    def forward(self, z_e):
        """Nearest code per position of z_e [B, D, H, W] -> z_q [B, D, H, W]. The distances
        are |e_k|^2 - 2 z.e_k in float32 (|z|^2 is the same for every k), ties to the lower
        index, as disttrain computes them."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        book = self.embedding.weight
        distances = (book * book).sum(dim=1)[None, :] - 2 * flat @ book.t()
        codes = distances.argmin(dim=1)
        z_q = book[codes].reshape(b, h, w, d).permute(0, 3, 1, 2)
        return z_q, codes


class DisttrainVQVAE(nn.Module):
    """disttrain's VQ-VAE (latent_kind "vq", seed 001): encoder.layers -> quantizer -> decoder.layers."""

    def __init__(self, config):
        super().__init__()
        if config["conditioning"] != "none":
            raise ValueError("a VQ-VAE is unconditional (conditioning none)")
        self.config = dict(config)
        self.input_shape = [int(d) for d in config["input_shape"]]
        self.encoder = VQEncoder(config, self.input_shape)
        out = self.encoder.shapes[-1]
        if len(out) != 3 or out[0] != int(config["latent"]):
            raise ValueError(f"the encoder ends at {out}, not [latent, H, W]")
        self.latent_shape = out
        self.commitment = float(config["commitment"])
        self.quantizer = Quantizer(int(config["codebook_size"]), int(config["latent"]),
                                   ema=float(config.get("codebook_ema", 0)) > 0,
                                   restart=int(config.get("codebook_restart_steps", 0)) > 0)
        self.decoder = StackDecoder(config, count(out))

    def deterministic_loss_terms(self, x, labels):
        """Per-image (reconstruction, codebook + commitment loss (1 + beta) |z_e - z_q|^2)."""
        z_e = self.encoder(x.reshape([x.shape[0]] + self.input_shape))
        z_q, _ = self.quantizer(z_e)
        vq = (1 + self.commitment) * (z_e - z_q).square().sum(dim=(1, 2, 3))
        logits = self.decoder(z_q.flatten(1)).flatten(1)
        if self.config.get("reconstruction", "bce") == "mse":
            recon = (torch.sigmoid(logits) - x).square().sum(dim=1)
        else:
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        return recon, vq


def is_stack(config):
    return isinstance(config.get("encoder"), list)


def model_config(metadata, path):
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise ValueError(f"{path}: not a disttrain model (metadata format {metadata.get('format')!r})")
    config = json.loads(metadata["config"])
    if is_stack(config):
        keys = ["input_shape", "classes", "conditioning", "encoder", "decoder", "latent"]
    else:
        keys = ["input_dim", "classes", "conditioning", "encoder_hidden", "decoder_hidden", "latent", "activation"]
    missing = [k for k in keys if k not in config]
    if missing:
        raise ValueError(f"{path}: model config lacks {missing}")
    if is_stack(config):
        config["input_dim"] = count(config["input_shape"])
    return config


def build_model(config):
    if config.get("latent_kind") == "vq":
        return DisttrainVQVAE(config)
    return DisttrainStackVAE(config) if is_stack(config) else DisttrainVAE(config)


def load_model(path):
    """The module with the checkpoint's weights, and whether the safetensors package agreed."""
    tensors, metadata = read_safetensors(path)
    model = build_model(model_config(metadata, path))
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
