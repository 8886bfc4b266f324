#!/usr/bin/env bash
# PyTorch interop check: disttrain and PyTorch must compute the same deterministic test loss
# (z = posterior mean) from the same weights, in both directions.
#
#   scripts/scenarios/pytorch-interop.sh CHECKPOINT_DIR [COUNT]      (COUNT test images, default 256)
#   scripts/scenarios/pytorch-interop.sh --train CONFIG [COUNT]       (a short run of CONFIG first)
#
#  1. disttrain -> PyTorch: `disttrain eval --checkpoint CHECKPOINT_DIR --posterior-mean
#     --count COUNT` against examples/load_in_pytorch.py on the same checkpoint.
#  2. PyTorch -> disttrain: examples/export_from_pytorch.py writes a fresh seeded model (of the
#     checkpoint's architecture when it is a layer stack, BatchNorm running statistics seeded
#     non-trivial); the same two evaluations of it must agree (so `train --init-from` can start
#     from such a file).
# --train CONFIG trains CONFIG for TRAIN_STEPS (default 30) steps, one epoch, and checks its
# last checkpoint (conv, BatchNorm, dropout models: stack layers are rebuilt in PyTorch).
# Agreement, each term separately (per-image means over the COUNT images):
#   bce and loss: |pytorch - disttrain| <= 1e-7 * |disttrain| (MLP), 2e-7 (layer stacks)
#   kl:           |pytorch - disttrain| <= max(1e-6, KL_REL * kl) (nats per image; kl can be
#                 ~0.03, so absolute; KL_REL 0 for MLP, 1e-6 for layer stacks, whose kl is 2-8)
# Measured on the 2-core development VM (MLP; counts 10, 256, 2000, both directions): bce and
# loss within 1e-8 relative, kl within 8.3e-8 nats. Layer stacks (conv-vae, conv-cvae,
# cvae-bn-dropout after 30 steps, 1000 images, both directions): bce and loss within 2.2e-8
# relative, kl within 9.2e-8 relative (6.9e-7 nats). Override with BCE_REL / KL_ABS / KL_REL.
#
# Uses Debian's python3-torch with /usr/bin/python3, installing it with apt-get when missing;
# if that is impossible it prints "skipped: python3-torch not installable: <reason>" and exits 77
# (scripts/test.sh reports it as skipped, which is not a pass; scripts/tools/install-deps.sh
# installs python3-torch on CI). Every process it starts runs under a time limit.
# The binary is $DISTTRAIN (default .build/release/disttrain): build it first.
set -uo pipefail
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # disttrain runs as an MPI singleton
py=/usr/bin/python3
disttrain=${DISTTRAIN:-.build/release/disttrain}
kl_abs=${KL_ABS:-1e-6}

die() { echo "pytorch-interop: error: $*" >&2; exit 1; }
skip() { echo "skipped: python3-torch not installable: $*"; exit 77; }

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
train_config=""
if [[ ${1:-} == --train ]]; then
  [[ $# -ge 2 ]] || usage
  train_config=$2; shift 2
fi
[[ $# -ge 1 && $# -le 2 && $1 != -h && $1 != --help ]] || { [[ -n $train_config && $# -le 1 ]] || usage; }
scratch=$(mktemp -d /tmp/disttrain-interop.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
if [[ -n $train_config ]]; then
  count=${1:-256}
  [[ -f $train_config ]] || die "$train_config: no such config"
else
  checkpoint=$1
  count=${2:-256}
fi
[[ $count =~ ^[1-9][0-9]*$ ]] || die "COUNT must be a positive integer, got '$count'"
[[ -x $disttrain ]] || die "$disttrain: not built (swift build -c release), or set DISTTRAIN"
if [[ -n $train_config ]]; then
  steps=${TRAIN_STEPS:-30}
  echo "pytorch-interop: training $train_config for $steps steps"
  timeout 900 "$disttrain" --config "$train_config" --max-steps "$steps" --epochs 1 --out "$scratch/run" \
    --quiet --no-progress --no-tensorboard || die "$train_config: the training run failed"
  latest=$(cat "$scratch/run/checkpoints/latest" 2>/dev/null) || die "$train_config: the run wrote no checkpoints/latest"
  checkpoint=$scratch/run/checkpoints/$latest
fi
[[ -f $checkpoint/model.safetensors ]] || die "$checkpoint: no model.safetensors (expected a checkpoint directory)"

# --- python3-torch --------------------------------------------------------------------------
if ! timeout 120 "$py" -c 'import torch, numpy' >/dev/null 2>&1; then
  command -v apt-get >/dev/null || skip "no apt-get on this machine"
  [[ $(id -u) == 0 ]] || skip "apt-get needs root (run: sudo apt-get install python3-torch)"
  echo "pytorch-interop: installing python3-torch with apt-get (about 190 MB to download, 0.8 GB on disk)"
  log=$(mktemp)
  start=$SECONDS
  if ! timeout 300 apt-get update >"$log" 2>&1; then
    reason=$(grep -E '^(E|W):' "$log" | tail -n 1); rm -f "$log"
    skip "apt-get update failed: ${reason:-see apt-get update}"
  fi
  if ! DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends python3-torch >"$log" 2>&1; then
    reason=$(grep -E '^E:' "$log" | tail -n 1); rm -f "$log"
    skip "apt-get install python3-torch failed: ${reason:-see apt-get install}"
  fi
  rm -f "$log"
  echo "pytorch-interop: installed in $((SECONDS - start))s"
  "$py" -c 'import torch, numpy' || die "python3-torch is installed but '$py -c \"import torch\"' fails"
fi
echo "pytorch-interop: $("$py" -c 'import torch; print("torch", torch.__version__)') with $py"

# A layer-stack model (its metadata config has an "encoder" list): write its architecture for
# the export direction, and use the stack tolerances.
stack=$(timeout 60 "$py" - "$checkpoint/model.safetensors" "$scratch/architecture.json" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    config = json.loads(json.loads(f.read(n))["__metadata__"]["config"])
if isinstance(config.get("encoder"), list):
    with open(sys.argv[2], "w") as f:
        json.dump(config, f)
    print(1)
else:
    print(0)
PY
) || die "$checkpoint/model.safetensors: cannot read its metadata config"
if [[ $stack == 1 ]]; then bce_rel=${BCE_REL:-2e-7} kl_rel=${KL_REL:-1e-6}; else bce_rel=${BCE_REL:-1e-7} kl_rel=${KL_REL:-0}; fi

# --- The two evaluations --------------------------------------------------------------------
field() {  # field JSON NAME: a number from a JSON object
  "$py" -c 'import json, sys; print(repr(float(json.loads(sys.argv[1])[sys.argv[2]])))' "$1" "$2"
}

compare() {  # compare LABEL DIR: disttrain eval vs load_in_pytorch.py on DIR
  local label=$1 dir=$2 out json loss bce kl torch_json
  if ! out=$(timeout 300 "$disttrain" eval --checkpoint "$dir" --posterior-mean --count "$count" 2>&1); then
    printf '%s\n' "$out" | tail -n 5 >&2
    die "$label: disttrain eval --checkpoint $dir --posterior-mean --count $count failed"
  fi
  json=$(grep -E '^\{' <<<"$out" | tail -n 1)
  [[ -n $json ]] || die "$label: disttrain eval printed no JSON object: $(tail -n 3 <<<"$out")"
  loss=$(field "$json" loss) && bce=$(field "$json" bce) && kl=$(field "$json" kl) \
    || die "$label: disttrain eval's JSON lacks loss, bce or kl: $json"
  echo "pytorch-interop: $label: disttrain: loss $loss (bce $bce, kl $kl)"
  if ! torch_json=$(timeout 300 "$py" examples/load_in_pytorch.py "$dir" --count "$count" --compare "$loss"); then
    echo "pytorch-interop: $label: PyTorch:   $torch_json" >&2
    die "$label: PyTorch and disttrain disagree on $dir"
  fi
  echo "pytorch-interop: $label: PyTorch:   loss $(field "$torch_json" loss) (bce $(field "$torch_json" bce), kl $(field "$torch_json" kl))"
  # Each term on its own: the total could hide a bce error offset by a kl error.
  timeout 60 "$py" - "$json" "$torch_json" "$bce_rel" "$kl_abs" "$label" "$kl_rel" <<'PY' || die "$label: PyTorch and disttrain disagree on $dir"
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
bce_rel, kl_abs, label, kl_rel = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], float(sys.argv[6])
limits = {"loss": bce_rel * abs(ours["loss"]), "bce": bce_rel * abs(ours["bce"]),
          "kl": max(kl_abs, kl_rel * abs(ours["kl"]))}
bad = []
for key, limit in limits.items():
    diff = abs(float(theirs[key]) - float(ours[key]))
    rel = diff / abs(ours[key]) if ours[key] else float("inf")
    print(f"pytorch-interop: {label}: {key}: difference {diff:.3g} ({rel:.3g} relative), limit {limit:.3g}")
    if not diff <= limit:
        bad.append(key)
if bad:
    print(f"pytorch-interop: {label}: FAILED: {', '.join(bad)} beyond the limit", file=sys.stderr)
    sys.exit(1)
PY
}

compare "disttrain -> PyTorch" "$checkpoint"

exported=$scratch/exported
mkdir -p "$exported"
if [[ $stack == 1 ]]; then
  export_args=(--stack "$scratch/architecture.json" --random-state)
else
  export_args=()
fi
timeout 300 "$py" examples/export_from_pytorch.py "$exported" --seed 0 "${export_args[@]}" >/dev/null \
  || die "examples/export_from_pytorch.py failed"
compare "PyTorch -> disttrain" "$exported"

echo "pytorch-interop: passed"
