#!/usr/bin/env python3
"""Exit 0 when every model.safetensors given holds the same tensors (names, dtypes, shapes and
bytes) as the first; the JSON header's __metadata__ (paths, config) is not compared.

    python3 scripts/tools/safetensors-tensors-equal.py A/model.safetensors B/model.safetensors ...
"""
import hashlib, json, struct, sys


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, t in sorted(header.items()):
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), hashlib.sha256(data[a:b]).hexdigest())
    return out


def main(paths):
    if len(paths) < 2:
        print("usage: safetensors-tensors-equal.py FILE FILE...", file=sys.stderr)
        return 2
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
