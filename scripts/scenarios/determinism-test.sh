#!/usr/bin/env bash
# Deterministic mode (runtime.deterministic, --deterministic) with real ranks: the trained
# model.safetensors must hold the same tensor bytes whatever the world size, thread count,
# host layout or interruption. On a 24000-record subset of MNIST (2000 test records), so that
# 2 epochs (about 130 steps) take seconds:
#   1. an MLP CVAE ([128] hidden, global batch 240: 24 pieces of 10 rows), 2 epochs at 1 rank
#      (2 BLAS threads), 1 rank (--threads 1), 2, 3 and 4 ranks: every model.safetensors equal;
#   2. the BatchNorm + dropout model (configs/cvae-bn-dropout.json, narrowed to [64]) at 1 and
#      4 ranks: equal, running statistics included;
#   3. 2 ranks across two network namespaces (scripts/scenarios/lib/two-hosts.sh): equal to 1;
#   4. a 4-rank run killed with kill -9 (mpirun and its ranks) mid-epoch after a step
#      checkpoint, resumed with --resume on 2 ranks: equal to 1, and the resume continued the
#      interrupted epoch (no restart at the epoch boundary);
#   5. 5 ranks: refused with one line, exit 64 on every rank;
#   6. ZeRO-1 (--shard-optimizer) on another world size: a sharded 4-rank run's mid-epoch step
#      checkpoint holds the same tensors as an unsharded 4-rank run's (every Adam moment, same
#      names, shapes and bytes) and passes `disttrain verify`; resumed at 2 ranks sharded, 2
#      unsharded and 1 rank, the three end on the same model bytes; the same in normal mode
#      (batches there depend on the world size): 2 ranks sharded and unsharded agree within
#      1e-6 relative, and the 1-rank resume trains on.
# Tensor bytes are compared with scripts/tools/safetensors-tensors-equal.py (the JSON metadata
# names the run directory). Check 3 needs root and iproute2; without them it is reported as
# skipped and the script exits 77 after the other checks (scripts/test.sh counts a skip).
#
#   bash scripts/scenarios/determinism-test.sh        # DISTTRAIN_BIN=path overrides the binary
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$PWD
bin=${DISTTRAIN_BIN:-$repo/.build/release/disttrain}
[[ "$bin" == /* ]] || bin="$repo/$bin"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
deadline=$(( $(date +%s) + 480 ))
passed=0 failed=0 skipped=""

say() { echo "determinism: $*"; }
show() { [[ -s "$1" ]] && tail -n 15 "$1" | sed 's/^/  | /' >&2; return 0; }
fail() {  # fail MESSAGE [LOG...]: one failed check; the others still run
  local msg="$1"; shift
  echo "determinism: FAILED: $msg" >&2
  local f; for f in "$@"; do show "$f"; done
  failed=$((failed + 1))
}
pass() { say "ok: $*"; passed=$((passed + 1)); }
left() { local s=$(( deadline - $(date +%s) )); (( s > 1 )) && echo "$s" || echo 1; }
[[ -x "$bin" ]] || { echo "determinism: no disttrain binary at $bin (build first, or set DISTTRAIN_BIN)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/disttrain-determinism.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The data subset and the configs.
python3 - "$tmp" <<'PY' || { echo "determinism: cannot write the data subset" >&2; exit 1; }
import gzip, json, struct, sys
out = sys.argv[1]
for name, count in (("train", 24000), ("t10k", 2000)):
    for kind, magic, item in (("images", 2051, 784), ("labels", 2049, 1)):
        with gzip.open(f"data/mnist/{name}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz") as f:
            raw = f.read()
        head = 16 if kind == "images" else 8
        dims = [count, 28, 28] if kind == "images" else [count]
        with open(f"{out}/{name}-{kind}", "wb") as f:
            f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + raw[head:head + count * item])
data = {"train_images": f"{out}/train-images", "train_labels": f"{out}/train-labels",
        "test_images": f"{out}/t10k-images", "test_labels": f"{out}/t10k-labels"}
mlp = json.load(open("configs/cvae.json"))
mlp["model"].update(encoder_hidden=[128], decoder_hidden=[128], latent=8)
mlp["data"] = data
mlp["training"].update(epochs=2, global_batch=240)
mlp["output"].update(grid_every=0, checkpoint_every_steps=10)
mlp["runtime"]["deterministic"] = True
json.dump(mlp, open(f"{out}/mlp.json", "w"))
mlp["runtime"]["deterministic"] = False
json.dump(mlp, open(f"{out}/mlp-normal.json", "w"))
bn = json.load(open("configs/cvae-bn-dropout.json"))
for part in ("encoder", "decoder"):
    for layer in bn["model"][part]:
        if layer["type"] == "linear" and layer["out"] == 256: layer["out"] = 64
bn["data"] = data
bn["training"].update(epochs=1, global_batch=240)
bn["output"] = {"grid_every": 0}
bn["runtime"] = {"deterministic": True}
json.dump(bn, open(f"{out}/bn.json", "w"))
PY

same() {  # same NAME REFERENCE_RUN RUN...: the last checkpoints' tensors are equal
  local name=$1; shift
  local files=() r
  for r in "$@"; do files+=("$r/checkpoints/$(cat "$r/checkpoints/latest" 2>/dev/null)/model.safetensors"); done
  if python3 scripts/tools/safetensors-tensors-equal.py "${files[@]}" > "$tmp/same.log" 2>&1; then
    pass "$name ($(grep -c SAME "$tmp/same.log") runs equal to the first, $(sed -n 's/.*: \([0-9]*\) tensors.*/\1/p' "$tmp/same.log" | head -1) tensors)"
  else
    fail "$name" "$tmp/same.log"
  fi
}
# run NAME RANKS ARGS...: one deterministic job (bounded by the deadline), log in $tmp/NAME.log
run() {
  local name=$1 n=$2; shift 2
  timeout -k 10 "$(left)" mpirun -n "$n" --oversubscribe --bind-to none "$bin" --no-progress --no-tensorboard \
    --log-level warning --out "$tmp/$name" "$@" </dev/null >"$tmp/$name.log" 2>&1
}

# --- 1. world sizes and thread counts ------------------------------------------------------
t1=$(date +%s)
for spec in "r1:1:--threads 2" "r1t1:1:--threads 1" "r2:2:" "r3:3:" "r4:4:"; do
  IFS=: read -r name n extra <<<"$spec"
  run "$name" "$n" --config "$tmp/mlp.json" $extra || fail "$name: $n ranks exited $?" "$tmp/$name.log"
done
same "MLP CVAE, 2 epochs, 1 rank (2 threads), 1 rank (1 thread), 2, 3, 4 ranks" "$tmp/r1" "$tmp/r1t1" "$tmp/r2" "$tmp/r3" "$tmp/r4"
say "step $(python3 -c "import json; m=[json.loads(l) for l in open('$tmp/r1/metrics.jsonl')]; print(m[-1]['step'], 'test', round(m[-1]['test_loss'], 3))") after 2 epochs; $(( $(date +%s) - t1 )) s"

# --- 2. BatchNorm + dropout ------------------------------------------------------------------
run bn1 1 --config "$tmp/bn.json" || fail "bn1 exited $?" "$tmp/bn1.log"
run bn4 4 --config "$tmp/bn.json" || fail "bn4 exited $?" "$tmp/bn4.log"
same "BatchNorm + dropout, 1 epoch, 1 and 4 ranks" "$tmp/bn1" "$tmp/bn4"

# --- 4. kill -9 a 4-rank run mid-epoch, resume on 2 ranks -----------------------------------
mpirun -n 4 --oversubscribe --bind-to none "$bin" --no-progress --no-tensorboard --log-level warning \
  --out "$tmp/killed" --config "$tmp/mlp.json" </dev/null >"$tmp/killed.log" 2>&1 &
job=$!
steps_per_epoch=$(python3 -c "import json; print(json.loads(open('$tmp/r1/metrics.jsonl').readline())['step'])" 2>/dev/null || echo 0)
target=$(( steps_per_epoch + steps_per_epoch / 2 ))   # a step checkpoint in the middle of epoch 2
for _ in $(seq 1 1200); do
  latest=$(cat "$tmp/killed/checkpoints/latest" 2>/dev/null)
  [[ -n "$latest" ]] && (( 10#${latest#step-} >= target )) && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
ranks=$(pgrep -P "$job" 2>/dev/null | tr '\n' ' ')
kill -9 "$job" $ranks 2>/dev/null
wait "$job" 2>/dev/null
at=$(cat "$tmp/killed/checkpoints/latest" 2>/dev/null)
if [[ -z "$at" ]] || (( 10#${at#step-} >= 2 * steps_per_epoch )); then
  fail "kill: the 4-rank run was not killed mid-run (latest checkpoint '${at}', $steps_per_epoch steps per epoch)" "$tmp/killed.log"
else
  cp "$tmp/killed.log" "$tmp/killed-first.log"
  run killed 2 --config "$tmp/mlp.json" --resume --log-level info
  status=$?
  if (( status != 0 )); then
    fail "resume on 2 ranks exited $status" "$tmp/killed.log"
  elif grep -q "resuming from the start of epoch" "$tmp/killed.log"; then
    fail "resume on 2 ranks restarted the epoch instead of continuing it" "$tmp/killed.log"
  else
    same "4 ranks killed (kill -9) at $at of $(( 2 * steps_per_epoch )) steps, resumed on 2 ranks" "$tmp/r1" "$tmp/killed"
  fi
fi

# --- 5. a world size that does not divide 24 --------------------------------------------------
run five 5 --config "$tmp/mlp.json"
status=$?
lines=$(grep -cE "^disttrain: error: (rank [0-9]+: )?runtime.deterministic needs a number of ranks that divides 24" "$tmp/five.log")
if (( status == 64 )) && (( lines >= 1 )) && ! grep -q "Fatal error\|Stack dump\|backtrace" "$tmp/five.log" && [[ ! -e "$tmp/five/checkpoints" ]]; then
  pass "5 ranks refused: exit 64, '$(grep -m1 '^disttrain: error' "$tmp/five.log")'"
else
  fail "5 ranks: exit $status, $lines error line(s)" "$tmp/five.log"
fi

# --- 6. ZeRO-1: a sharded checkpoint resumed on another world size, sharded or not -------------
t6=$(date +%s)
zero_ok=1
step30=checkpoints/step-00000030
for spec in "z4:4:--shard-optimizer" "z4u:4:"; do
  IFS=: read -r name n extra <<<"$spec"
  run "$name" "$n" --config "$tmp/mlp.json" --max-steps 30 $extra || { fail "ZeRO $name: $n ranks exited $?" "$tmp/$name.log"; zero_ok=0; }
done
if (( zero_ok )); then
  # Deterministic mode: an elementwise Adam on slices gives the unsharded bits, so the files are equal.
  if python3 scripts/tools/safetensors-tensors-equal.py "$tmp/z4u/$step30/optimizer.safetensors" "$tmp/z4/$step30/optimizer.safetensors" \
       > "$tmp/zfmt.log" 2>&1; then
    pass "ZeRO: the sharded 4-rank checkpoint's optimizer.safetensors equals the unsharded run's ($(sed -n 's/.*: \([0-9]*\) tensors.*/\1/p' "$tmp/zfmt.log") tensors: every moment, same names, shapes, bytes)"
  else
    fail "ZeRO: sharded and unsharded 4-rank optimizer files differ" "$tmp/zfmt.log"; zero_ok=0
  fi
  "$bin" verify --checkpoint "$tmp/z4/$step30" > "$tmp/zverify.log" 2>&1 && grep -q intact "$tmp/zverify.log" &&
    pass "ZeRO: disttrain verify on the sharded checkpoint: $(head -c 120 "$tmp/zverify.log")" ||
    { fail "ZeRO: disttrain verify on the sharded checkpoint exited $?" "$tmp/zverify.log"; zero_ok=0; }
fi
if (( zero_ok )); then
  for spec in "z2s:2:--shard-optimizer" "z2u:2:" "z1:1:"; do
    IFS=: read -r name n extra <<<"$spec"
    run "$name" "$n" --config "$tmp/mlp.json" --max-steps 60 --resume-from "$tmp/z4/$step30" $extra ||
      fail "ZeRO: resume at $n ranks ($name) exited $?" "$tmp/$name.log"
  done
  same "ZeRO: sharded 4-rank checkpoint at step 30 resumed to 60 at 2 ranks sharded, 2 unsharded, 1 rank" "$tmp/z2s" "$tmp/z2u" "$tmp/z1"
  # Normal mode: the same resume, compared within the sharded optimizer's tolerance.
  run n4 4 --config "$tmp/mlp-normal.json" --max-steps 30 --shard-optimizer || fail "ZeRO normal mode: 4 ranks exited $?" "$tmp/n4.log"
  for spec in "n2s:2:--shard-optimizer" "n2u:2:" "n1:1:--shard-optimizer"; do
    IFS=: read -r name n extra <<<"$spec"
    run "$name" "$n" --config "$tmp/mlp-normal.json" --max-steps 60 --resume-from "$tmp/n4/$step30" $extra ||
      fail "ZeRO normal mode: resume at $n ranks ($name) exited $?" "$tmp/$name.log"
  done
  latest() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest" 2>/dev/null)/model.safetensors"; }
  if python3 scripts/tools/safetensors-tensors-equal.py --relative 1e-6 "$(latest "$tmp/n2u")" "$(latest "$tmp/n2s")" > "$tmp/nclose.log" 2>&1 &&
     [[ $(latest "$tmp/n1") == */step-00000060/model.safetensors ]] &&
     ! python3 scripts/tools/safetensors-tensors-equal.py "$tmp/n4/$step30/model.safetensors" "$(latest "$tmp/n1")" >/dev/null 2>&1; then
    pass "ZeRO normal mode: resumed at 2 ranks sharded vs unsharded: $(sed -n 's/.*\(relative difference [^ ]*\).*/\1/p' "$tmp/nclose.log"); 1 rank trained on to step 60"
  else
    fail "ZeRO normal mode: resumed runs disagree or did not train" "$tmp/nclose.log" "$tmp/n1.log"
  fi
fi
say "ZeRO resume checks: $(( $(date +%s) - t6 )) s"

# --- 3. two hosts (last: it may skip) --------------------------------------------------------
hosts=$tmp/hosts
mkdir -p "$hosts"
(
  skip() { echo "skipped: $*"; exit 77; }
  fail() { echo "FAILED: $1"; local f; shift; for f in "$@"; do show "$f"; done; exit 1; }
  say() { echo "$*"; }
  [[ $(id -u) == 0 ]] || skip "not root: network namespaces need CAP_SYS_ADMIN"
  command -v ip >/dev/null || skip "iproute2 ('ip') is missing (scripts/scenarios/multihost-test.sh installs it)"
  tmp=$hosts
  source "$repo/scripts/scenarios/lib/two-hosts.sh"
  mkdir -p "$hosts/runs"
  bounded "$(left)" "${onA[@]}" "${mpi[@]}" "$bin" --no-progress --no-tensorboard --log-level warning \
    --config "$(dirname "$hosts")/mlp.json" --out "$hosts/runs/h2" </dev/null >"$(dirname "$hosts")/h2.log" 2>&1 ||
    fail "2 ranks on two hosts exited $?" "$(dirname "$hosts")/h2.log"
  # Only host A (this namespace side) sees the run directory: copy it out before the trap removes it.
  cp -r "$hosts/runs/h2" "$(dirname "$hosts")/h2"
) > "$tmp/hosts.out" 2>&1
status=$?
case $status in
  0) same "2 ranks across two network namespaces" "$tmp/r1" "$tmp/h2" ;;
  77) skipped=$(sed -n 's/^skipped: //p' "$tmp/hosts.out"); say "two hosts skipped: $skipped" ;;
  *) fail "two hosts: $(grep -m1 FAILED "$tmp/hosts.out")" "$tmp/hosts.out" ;;
esac

say "$passed passed, $failed failed$([[ -n $skipped ]] && echo ', 1 skipped')"
(( failed > 0 )) && exit 1
[[ -n $skipped ]] && exit 77
exit 0
