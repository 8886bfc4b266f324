#!/usr/bin/env python3
"""Exit 0 when every safetensors file given holds the same tensors (names, dtypes, shapes and
bytes) as the first; the JSON header's __metadata__ (paths, config) is not compared.

With --relative TOL the bytes may differ: the files must still hold the same names, dtypes and
shapes, and the float32 values of all tensors together must differ from the first file's by a
relative L2 norm below TOL (||b - a|| / ||a||, the measure of the ZeRO-1 equivalence tests).

    python3 scripts/tools/safetensors-tensors-equal.py A/model.safetensors B/model.safetensors ...
    python3 scripts/tools/safetensors-tensors-equal.py --relative 1e-6 A/model.safetensors B/model.safetensors
"""
import array, hashlib, json, math, struct, sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return header, data


def tensors(path):
    header, data = read(path)
    out = {}
    for name, t in sorted(header.items()):
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), hashlib.sha256(data[a:b]).hexdigest())
    return out


def values(path):
    """Name -> (dtype, shape, float32 values) for every tensor."""
    header, data = read(path)
    out = {}
    for name, t in sorted(header.items()):
        a, b = t["data_offsets"]
        v = array.array("f")
        if t["dtype"] == "F32":
            v.frombytes(data[a:b])
            if sys.byteorder != "little":
                v.byteswap()
        out[name] = (t["dtype"], tuple(t["shape"]), v)
    return out


def relative(paths, tolerance):
    first = values(paths[0])
    bad = 0
    for p in paths[1:]:
        other = values(p)
        layout = {k: v[:2] for k, v in first.items()}
        if {k: v[:2] for k, v in other.items()} != layout:
            print(f"DIFFER  {p}: tensor names, dtypes or shapes differ from {paths[0]}")
            bad += 1
            continue
        diff = norm = 0.0
        for k, (_, _, a) in first.items():
            b = other[k][2]
            diff += math.fsum((x - y) * (x - y) for x, y in zip(a, b))
            norm += math.fsum(x * x for x in a)
        rel = math.sqrt(diff / norm) if norm > 0 else math.sqrt(diff)
        if rel < tolerance:
            print(f"CLOSE   {p}: {len(first)} tensors, relative difference {rel:.3g} < {tolerance:g} from {paths[0]}")
        else:
            print(f"DIFFER  {p}: relative difference {rel:.3g} >= {tolerance:g} from {paths[0]}")
            bad += 1
    return 1 if bad else 0


def main(args):
    tolerance = None
    if args[:1] == ["--relative"] and len(args) > 1:
        tolerance = float(args[1])
        args = args[2:]
    paths = args
    if len(paths) < 2:
        print("usage: safetensors-tensors-equal.py [--relative TOL] FILE FILE...", file=sys.stderr)
        return 2
    if tolerance is not None:
        return relative(paths, tolerance)
    first = tensors(paths[0])
    bad = 0
    for p in paths[1:]:
        other = tensors(p)
        if other.keys() != first.keys():
            print(f"DIFFER  {p}: tensor names differ from {paths[0]}")
            bad += 1
            continue
        diff = [k for k in first if first[k] != other[k]]
        if diff:
            print(f"DIFFER  {p}: {len(diff)} of {len(first)} tensors differ from {paths[0]} (first: {diff[0]})")
            bad += 1
        else:
            print(f"SAME    {p}: {len(first)} tensors equal to {paths[0]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
