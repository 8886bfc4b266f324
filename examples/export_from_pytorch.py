#!/usr/bin/env python3
"""Builds a disttrain VAE/CVAE in PyTorch and saves it in disttrain's model.safetensors layout.

usage: export_from_pytorch.py OUT [--seed S] [--conditioning both|decoder|none]
                              [--encoder-hidden 512,512] [--decoder-hidden 512,512] [--latent 16]
                              [--classes 10] [--input-dim 784] [--activation relu|leaky_relu]
                              [--leaky-slope 0.2] [--from CHECKPOINT]
       export_from_pytorch.py OUT --stack CONFIG [--input-shape 1,28,28] [--seed S] [--random-state] [--int64-state]

OUT is a file path, or a directory that gets OUT/model.safetensors. The module is the one
in load_in_pytorch.py, initialized by PyTorch's defaults after torch.manual_seed(S) (or
with the weights of --from, any checkpoint load_in_pytorch.py reads: a round trip). Without
--stack it is the MLP form; --stack CONFIG builds a layer-stack model from a disttrain
config file (its "model" section: encoder, decoder, latent, classes, conditioning,
latent_kind, reconstruction) or from an architecture JSON file (as in a checkpoint's
metadata, input_shape included). The input shape defaults to 784 (written [784, 1, 1], as
disttrain does) for a linear-first encoder and 1,28,28 otherwise. --random-state gives BatchNorm seeded non-trivial running statistics
(what a trained model has) instead of 0 / 1 / 0 batches.

The file holds, like disttrain's own checkpoints: `__metadata__` {"format": "disttrain.vae.v1",
"config": "<architecture JSON>"}, then every tensor as little-endian F32 (BatchNorm's
num_batches_tracked too, as disttrain writes it and reads it; --int64-state writes it as I64,
PyTorch's dtype, which disttrain does not read) in PyTorch's conventions (Linear [out, in], Conv2d [out, in, kh, kw],
ConvTranspose2d [in, out, kh, kw]), the header padded with spaces to an 8-byte boundary, so
`disttrain train --init-from OUT` can start from it. The file is written atomically and read
back before the script reports success.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_in_pytorch import (FORMAT, DisttrainVAE, build_model, is_stack, load_model,  # noqa: E402
                             read_safetensors, resolve_checkpoint)

LAYER_KEYS = {  # layer type -> its keys besides "type", in the order disttrain writes them
    "linear": ["out"], "conv2d": ["out", "kernel", "stride", "padding"],
    "conv_transpose2d": ["out", "kernel", "stride", "padding", "output_padding"],
    "batchnorm": [], "dropout": ["p"], "relu": [], "leaky_relu": ["slope"], "tanh": [], "sigmoid": [],
    "flatten": [], "reshape": ["shape"],
}
LAYER_DEFAULTS = {"stride": 1, "padding": 0, "output_padding": 0, "slope": 0.01}


def layer_object(spec):
    kind = spec["type"]
    if kind == "residual":
        return {"type": "residual", "block": [layer_object(l) for l in spec["block"]]}
    if kind not in LAYER_KEYS:
        raise ValueError(f"unknown layer type {kind!r}")
    out = {"type": kind}
    for key in LAYER_KEYS[kind]:
        value = spec.get(key, LAYER_DEFAULTS.get(key))
        if value is None:
            raise ValueError(f"layer {json.dumps(spec)} lacks {key!r}")
        out[key] = [int(d) for d in value] if key == "shape" else float(value) if key in ("p", "slope") else int(value)
    return out


def architecture_json(config):
    """The metadata "config" string, with the keys and explanations disttrain writes."""
    if is_stack(config):
        shape = [int(d) for d in config["input_shape"]]
        if len(shape) == 1:
            shape += [1, 1]  # disttrain writes [C, H, W]; a flat input is [P, 1, 1]
        vq = {}
        if config.get("latent_kind") == "vq":  # written first, as disttrain does
            vq = {"codebook_size": int(config["codebook_size"]), "commitment": float(config["commitment"]),
                  "codebook_ema": float(config.get("codebook_ema", 0))}
        return json.dumps({
            **vq,
            "input_shape": shape,
            "classes": int(config["classes"]),
            "conditioning": config["conditioning"],
            "latent": int(config["latent"]),
            "latent_kind": config.get("latent_kind", "gaussian"),
            "reconstruction": config.get("reconstruction", "bce"),
            "encoder": [layer_object(l) for l in config["encoder"]],
            "decoder": [layer_object(l) for l in config["decoder"]],
        }, separators=(",", ":"))
    ordered = {
        "input_dim": int(config["input_dim"]),
        "classes": int(config["classes"]),
        "conditioning": config["conditioning"],
        "encoder_hidden": [int(h) for h in config["encoder_hidden"]],
        "decoder_hidden": [int(h) for h in config["decoder_hidden"]],
        "latent": int(config["latent"]),
        "activation": config["activation"],
        "leaky_slope": float(config.get("leaky_slope", 0)) if config["activation"] == "leaky_relu" else 0,
        "encoder_input": "[pixels/255 | one-hot label] (label only when conditioning is both)",
        "decoder_input": "[z | one-hot label] (label unless conditioning is none)",
    }
    return json.dumps(ordered, separators=(",", ":"))


def write_safetensors(path, tensors, metadata, int64=False):
    """tensors: name -> torch tensor (written in this order as little-endian float32; integer
    tensors too, as disttrain writes and reads BatchNorm's num_batches_tracked, unless int64)."""
    header = {"__metadata__": dict(metadata)}
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        integer = int64 and not tensor.is_floating_point()
        blob = tensor.detach().cpu().contiguous().numpy().astype("<i8" if integer else "<f4").tobytes()
        header[name] = {"dtype": "I64" if integer else "F32", "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)  # data starts 8-byte aligned
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def hidden_list(text):
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of widths")
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be at least 1")
    return widths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output file, or directory for model.safetensors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conditioning", choices=["both", "decoder", "none"], default="both")
    parser.add_argument("--encoder-hidden", type=hidden_list, default=[512, 512])
    parser.add_argument("--decoder-hidden", type=hidden_list, default=[512, 512])
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--input-dim", type=int, default=784)
    parser.add_argument("--activation", choices=["relu", "leaky_relu"], default="relu")
    parser.add_argument("--leaky-slope", type=float, default=0.2)
    parser.add_argument("--from", dest="source", help="copy the weights (and architecture) of this checkpoint")
    parser.add_argument("--stack", metavar="CONFIG", help="layer-stack model from this disttrain config or architecture JSON")
    parser.add_argument("--input-shape", help="input shape of a --stack model, e.g. 1,28,28 or 784")
    parser.add_argument("--int64-state", action="store_true",
                        help="write integer state (num_batches_tracked) as I64 (disttrain reads F32 only)")
    parser.add_argument("--random-state", action="store_true",
                        help="seeded non-trivial BatchNorm running statistics (--stack models)")
    args = parser.parse_args()

    if args.source:
        model, _ = load_model(resolve_checkpoint(args.source))
        config = model.config
    elif args.stack:
        try:
            with open(args.stack) as f:
                loaded = json.load(f)
        except (OSError, ValueError) as error:
            parser.error(f"--stack {args.stack}: {error}")
        section = loaded.get("model", loaded)
        if not is_stack(section):
            parser.error(f"--stack {args.stack}: no \"encoder\" layer list (an MLP config? use the MLP options)")
        config = {k: section[k] for k in ("encoder", "decoder", "latent", "classes", "conditioning",
                                          "codebook_size", "commitment", "codebook_ema") if k in section}
        if section.get("latent_kind") == "vq":  # a VQ-VAE config file may leave these to their defaults
            config.setdefault("codebook_size", 512)
            config.setdefault("commitment", 0.25)
        config["latent_kind"] = section.get("latent_kind", "gaussian")
        config["reconstruction"] = section.get("reconstruction", "bce")
        config.setdefault("classes", 10)
        config.setdefault("conditioning", "none")
        if args.input_shape:
            config["input_shape"] = [int(d) for d in args.input_shape.split(",")]
        elif "input_shape" in section:
            config["input_shape"] = section["input_shape"]
        else:
            first = config["encoder"][0]["type"] if config["encoder"] else "linear"
            config["input_shape"] = [784] if first == "linear" else [1, 28, 28]
        config = json.loads(architecture_json(config))  # normalized layer objects
        torch.manual_seed(args.seed)
        model = build_model(config)
        if args.random_state:
            generator = torch.Generator().manual_seed(args.seed + 1)
            for name, buffer in model.named_buffers():
                if name.endswith("running_mean"):
                    buffer.copy_(0.2 * torch.randn(buffer.shape, generator=generator))
                elif name.endswith("running_var"):
                    buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))
                elif name.endswith("num_batches_tracked"):
                    buffer.fill_(7)
    else:
        if min(args.latent, args.classes, args.input_dim) < 1:
            parser.error("--latent, --classes and --input-dim must be at least 1")
        config = {"input_dim": args.input_dim, "classes": args.classes, "conditioning": args.conditioning,
                  "encoder_hidden": args.encoder_hidden, "decoder_hidden": args.decoder_hidden,
                  "latent": args.latent, "activation": args.activation, "leaky_slope": args.leaky_slope}
        torch.manual_seed(args.seed)
        model = DisttrainVAE(config)

    out = args.out
    if os.path.isdir(out) or out.endswith("/"):
        os.makedirs(out, exist_ok=True)
        out = os.path.join(out, "model.safetensors")
    state = model.state_dict()
    metadata = {"format": FORMAT, "config": architecture_json(config),
                "exported_by": f"examples/export_from_pytorch.py (torch {torch.__version__}"
                               + (f", seed {args.seed})" if not args.source else f", from {args.source})")}
    write_safetensors(out, state, metadata, int64=args.int64_state)

    # Read it back the way disttrain's users would: same names, shapes and values.
    back, back_meta = read_safetensors(out)
    if list(back) != list(state) or any(not torch.equal(back[k], state[k].to(back[k].dtype)) for k in state):
        print(f"export_from_pytorch: error: {out} does not read back identically", file=sys.stderr)
        return 1
    assert back_meta["format"] == FORMAT and json.loads(back_meta["config"])["latent"] == config["latent"]
    print(json.dumps({"path": out, "tensors": len(state), "parameters": sum(t.numel() for t in state.values()),
                      "bytes": os.path.getsize(out), "config": json.loads(metadata["config"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
