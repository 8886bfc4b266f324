#!/usr/bin/env bash
# Every variant in configs/*.json: a short training run (30 steps, under mpirun with $RANKS
# ranks, default 2, asserting that the step loop made no heap allocation), then every
# checkpoint command that applies to the variant on its checkpoint, with the outputs checked
# (PNG signature and IHDR size, eval's JSON keys, nmi for a categorical latent, perplexity and
# codes used for a VQ-VAE), and every
# command that does not apply checked to fail cleanly: non-zero exit, one "disttrain: error:"
# line on stderr, no output file. With no config named, also the seed CVAE with a sharded
# optimizer (overlap, fp32 and bf16 wire) and the BatchNorm + dropout variant in deterministic
# mode, for the zero-allocation check. Prints one PASS/FAIL line per check and exits non-zero on
# any failure.
#
#   bash scripts/scenarios/variants-check.sh                          # uses .build/release/disttrain
#   BIN=.build-x/release/disttrain bash scripts/scenarios/variants-check.sh
#   STEPS=50 bash scripts/scenarios/variants-check.sh configs/gumbel-vae.json   # some configs only
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-.build/release/disttrain}
steps=${STEPS:-30}
ranks=${RANKS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[[ -x "$bin" ]] || { echo "variants-check: $bin is not an executable (build first, or set BIN)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

check() {  # check NAME COMMAND...: records one check
  local name="$1"; shift
  if "$@" > "$tmp/check.log" 2>&1; then
    passed=$((passed + 1)); echo "PASS  $name"
  else
    failed=$((failed + 1)); echo "FAIL  $name"; sed 's/^/      /' "$tmp/check.log" | head -20
  fi
}

# png FILE WIDTH HEIGHT: PNG signature, then an IHDR chunk with this size.
png() {
  python3 - "$@" <<'PY'
import struct, sys
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = open(path, "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG signature"
assert b[12:16] == b"IHDR", f"{path}: first chunk is not IHDR"
width, height = struct.unpack(">II", b[16:24])
assert (width, height) == (w, h), f"{path}: {width}x{height}, expected {w}x{h}"
assert b.rstrip(b"\0")[-8:-4] == b"IEND", f"{path}: no IEND chunk"
PY
}

# evaljson FILE KIND: one line of JSON with the keys eval promises for this latent kind.
evaljson() {
  python3 - "$@" <<'PY'
import json, math, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, f"expected one line of stdout, got {len(lines)}"
j = json.loads(lines[0])
keys = ["checkpoint", "latent_kind", "test_samples", "loss", "bce", "kl", "nll_iw", "iw_samples", "posterior_mean", "world_size", "seconds"]
missing = [k for k in keys if k not in j]
assert not missing, f"missing {missing}"
assert j["latent_kind"] == sys.argv[2], j
for k in ["loss", "bce", "kl"]:
    assert isinstance(j[k], (int, float)) and math.isfinite(j[k]), f"{k} = {j[k]}"
assert abs(j["loss"] - j["bce"] - j["kl"]) <= 1e-9 * abs(j["loss"]), j
if sys.argv[2] == "vq":
    assert j["nll_iw"] is None and j["iw_samples"] == 0, j
    assert 1 <= j["perplexity"] <= j["codes_used"] <= j["codebook_size"], j
elif sys.argv[2] == "categorical":
    assert 0 <= j["nmi"] <= 1, j
    assert math.isfinite(j["nll"]) and 0 < j["nll"] <= j["loss"], j
    assert j["nll_iw"] is None, j
else:
    assert math.isfinite(j["nll_iw"]) and j["nll_iw"] > 0 and j["iw_samples"] == 5, j
print(lines[0])
PY
}

# produces FILE WIDTH HEIGHT COMMAND...: the command succeeds and FILE is a PNG of this size.
produces() {
  local file="$1" w="$2" h="$3"; shift 3
  "$@" && png "$file" "$w" "$h"
}

# evaluates OUT KIND COMMAND...: the command succeeds and its stdout (kept in OUT) is eval's JSON.
evaluates() {
  local out="$1" kind="$2"; shift 2
  "$@" > "$out" && evaljson "$out" "$kind"
}

# refused FILE COMMAND...: the command fails with exactly one "disttrain: error:" line and FILE is not written.
refused() {
  local file="$1"; shift
  if "$@" > "$tmp/refused.out" 2> "$tmp/refused.err"; then echo "exit 0 (expected a failure)"; return 1; fi
  cat "$tmp/refused.err"
  [[ $(wc -l < "$tmp/refused.err") -eq 1 ]] || { echo "stderr is not one line"; return 1; }
  grep -q '^disttrain: error: ' "$tmp/refused.err" || { echo "stderr does not start with 'disttrain: error: '"; return 1; }
  [[ ! -e "$file" ]] || { echo "$file was written"; return 1; }
}

# short_config CONFIG OUT RUN [deterministic]: writes to OUT a copy of CONFIG cut to a
# $steps-step single-epoch run into RUN (in deterministic mode when asked), and prints the
# variant's conditioning, latent size, latent kind and classes.
short_config() {
  python3 - "$1" "$2" "$3" "$steps" "${4:-}" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("training", {}).update({"max_steps": int(sys.argv[4]), "epochs": 1})
c.setdefault("output", {})["dir"] = sys.argv[3]
if sys.argv[5] == "deterministic":
    c.setdefault("runtime", {})["deterministic"] = True
json.dump(c, open(sys.argv[2], "w"))
m = c.get("model", {})
print(m.get("conditioning", "both"), m.get("latent", 16), m.get("latent_kind", "gaussian"), m.get("classes", 10))
PY
}

# train_checked NAME CONFIG RUN: two checks, the short run on $ranks ranks and zero heap
# allocations per step in its metrics (disttrain's own code; MPI's and OpenBLAS's
# allocations are counted apart).
train_checked() {
  local name="$1" config="$2" run="$3"
  check "$name: train $steps steps on $ranks ranks" timeout 600 mpirun -n "$ranks" --oversubscribe \
    "$bin" --config "$config" --quiet --no-tensorboard --no-progress --log-level warning
  check "$name: zero heap allocations per step" python3 -c '
import json, sys
m = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert m["allocations_per_step"] == 0, m["allocations_per_step"]
print("allocations_per_step", m["allocations_per_step"], "mpi", m["mpi_allocations_per_step"], "blas", m["blas_allocations_per_step"])
' "$run/metrics.jsonl"
}

configs=("$@")
(( ${#configs[@]} )) || configs=(configs/*.json)
started=$SECONDS
for config in "${configs[@]}"; do
  name=$(basename "$config" .json)
  run="$tmp/$name"
  # The variant's properties, and a copy of its config cut to a short run into $run.
  read -r conditioning latent kind classes < <(short_config "$config" "$tmp/$name.json" "$run") || { failed=$((failed + 1)); echo "FAIL  $name: cannot read $config"; continue; }
  echo "== $name (conditioning $conditioning, latent $latent $kind)"
  train_checked "$name" "$tmp/$name.json" "$run"
  ckpt="$run/checkpoints/latest"
  [[ -f "$ckpt" ]] || { failed=$((failed + 1)); echo "FAIL  $name: no checkpoint, skipping its commands"; continue; }

  # generate: a categorical latent draws one row per category (one column, or one per label
  # when the decoder sees the label); a Gaussian one 20 samples (of label 3 if conditional).
  if [[ $kind == vq ]]; then
    check "$name: generate is refused (a VQ-VAE has no prior)" refused "$tmp/$name-gen.png" \
      "$bin" generate --checkpoint "$ckpt" --count 20 --out "$tmp/$name-gen.png"
  elif [[ $kind == categorical ]]; then
    cols=1; [[ $conditioning != none ]] && cols=$classes
    check "$name: generate (one row per category)" produces "$tmp/$name-gen.png" $((30 * cols + 2)) $((30 * latent + 2)) \
      "$bin" generate --checkpoint "$ckpt" --out "$tmp/$name-gen.png"
  else
    label=(); [[ $conditioning != none ]] && label=(--label 3)
    check "$name: generate" produces "$tmp/$name-gen.png" 302 62 \
      "$bin" generate --checkpoint "$ckpt" --count 20 "${label[@]}" --out "$tmp/$name-gen.png"
  fi
  check "$name: reconstruct" produces "$tmp/$name-rec.png" 302 122 \
    "$bin" reconstruct --checkpoint "$ckpt" --count 20 --out "$tmp/$name-rec.png"
  check "$name: eval --samples 5" evaluates "$tmp/$name-eval.json" "$kind" \
    "$bin" eval --checkpoint "$ckpt" --samples 5 --count 2000

  # style: only with a decoder that sees the label.
  if [[ $conditioning != none ]]; then
    check "$name: style" produces "$tmp/$name-style.png" 332 32 \
      "$bin" style --checkpoint "$ckpt" --test-index 0 --out "$tmp/$name-style.png"
  else
    check "$name: style is refused (unconditional)" refused "$tmp/$name-style.png" \
      "$bin" style --checkpoint "$ckpt" --test-index 0 --out "$tmp/$name-style.png"
  fi

  # manifold: only with a 2-D Gaussian latent (one file per label when the decoder sees it).
  if [[ $kind == gaussian && $latent == 2 ]]; then
    m="$tmp/$name-m.png"; [[ $conditioning != none ]] && m="$tmp/$name-m-label7.png"
    check "$name: manifold" produces "$m" 242 242 \
      "$bin" manifold --checkpoint "$ckpt" --n 8 --out "$tmp/$name-m.png" --scatter "$tmp/$name-scatter.svg" --count 500
    check "$name: manifold scatter is SVG" grep -q '</svg>' "$tmp/$name-scatter.svg"
  else
    check "$name: manifold is refused (latent $latent $kind)" refused "$tmp/$name-m.png" \
      "$bin" manifold --checkpoint "$ckpt" --out "$tmp/$name-m.png"
  fi
done

# The sharded optimizer (ZeRO-1) with overlap (a reduce-scatter per bucket started during backward,
# several buckets, and a parameter allgather per bucket waited for in the next forward) allocates
# nothing in disttrain's own code either, fp32 and bf16 wire, when all configs are checked.
if (( $# == 0 )); then
  for wire in fp32 bf16; do
    run="$tmp/zero-$wire"
    short_config configs/cvae.json "$tmp/zero-$wire.json" "$run" > /dev/null
    python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c.setdefault("runtime", {}).update(shard_optimizer=True, allreduce="overlap", bucket_mb=0.5, wire=sys.argv[2]); json.dump(c, open(sys.argv[1], "w"))' \
      "$tmp/zero-$wire.json" "$wire"
    echo "== cvae --shard-optimizer, overlap, $wire wire"
    train_checked "cvae sharded overlap $wire" "$tmp/zero-$wire.json" "$run"
  done
fi

# Deterministic mode's step (per-piece gradients, exact sums, BatchNorm per piece) allocates
# nothing either: the BatchNorm + dropout variant, when all configs are checked.
if (( $# == 0 )); then
  run="$tmp/deterministic"
  short_config configs/cvae-bn-dropout.json "$tmp/deterministic.json" "$run" deterministic > /dev/null
  echo "== cvae-bn-dropout --deterministic"
  train_checked "cvae-bn-dropout --deterministic" "$tmp/deterministic.json" "$run"
fi

echo
echo "variants-check: $passed passed, $failed failed ($((SECONDS - started)) s)"
(( failed == 0 ))
