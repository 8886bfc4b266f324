#!/usr/bin/env bash
# Issue 17 item 3: kill the trainer at every rename it makes (strace fault injection), then
# --resume (or start again when no checkpoint was completed yet), and check the finished run
# against an uninterrupted one: the same metrics lines (one per epoch, same losses: resume is
# bitwise exact), the same `latest` and `best`, the same final parameters, no temporaries.
# Needs strace. Every command runs under `timeout`.
source "$(dirname "$0")/lib/prologue.sh"   # strict mode, cd to the repository: root, bin, tmp (removed at exit)
passed=0 failed=0
bad() { echo "kill-at-rename: FAILED: $*" >&2; failed=$((failed + 1)); }

cat > "$tmp/c.json" <<JSON
{ "model": { "encoder_hidden": [32], "decoder_hidden": [32], "latent": 2 },
  "data": { "train_images": "$root/data/mnist/train-images-idx3-ubyte.gz", "train_labels": "$root/data/mnist/train-labels-idx1-ubyte.gz",
            "test_images": "$root/data/mnist/t10k-images-idx3-ubyte.gz", "test_labels": "$root/data/mnist/t10k-labels-idx1-ubyte.gz" },
  "training": { "epochs": 2, "global_batch": 2048 },
  "output": { "checkpoint_every_steps": 20, "keep_checkpoints": 2 },
  "runtime": { "blas_threads": 1 } }
JSON
train() { timeout 300 "$bin" --config "$tmp/c.json" --quiet --no-progress "$@"; }
renames=rename,renameat,renameat2

source scripts/scenarios/lib/tensor-digest.sh   # tensor_digest, final_digest
# The metrics lines without wall-clock fields.
lines() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    print({k: j[k] for k in ("epoch", "step", "train_loss", "test_loss", "test_bce", "test_kl")})
PY
}

timeout 300 strace -f -qq -o "$tmp/trace" -e trace=$renames "$bin" --config "$tmp/c.json" --quiet --no-progress --out "$tmp/straight" 2> "$tmp/e.txt" \
  || { bad "uninterrupted run failed: $(cat "$tmp/e.txt")"; exit 1; }
total=$(grep -cE '(^|\] |^[0-9]+ +)rename(at2?)?\(' "$tmp/trace")
want_lines=$(lines "$tmp/straight/metrics.jsonl")
want_latest=$(cat "$tmp/straight/checkpoints/latest")
want_best=$(cat "$tmp/straight/checkpoints/best")
want_model=$(tensor_digest "$tmp/straight/checkpoints/$want_latest/model.safetensors")
best_by_metrics=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = min(rows, key=lambda r: r['test_loss'])
print('step-%08d' % b['step'])" "$tmp/straight/metrics.jsonl")
[[ "$want_best" == "$best_by_metrics" ]] || bad "uninterrupted run: best is $want_best, the lowest test_loss is at $best_by_metrics"
echo "kill-at-rename: $total renames in an uninterrupted run of 2 epochs; latest $want_latest, best $want_best"
(( total >= 20 )) || bad "only $total renames traced"

for n in $(seq 1 "$total"); do
  dir=$tmp/k$n
  # (in a subshell, so the shell's "Killed" notice goes to /dev/null too)
  ( timeout 300 strace -f -qq -o /dev/null -e trace=$renames -e inject=$renames:signal=KILL:when=$n \
    "$bin" --config "$tmp/c.json" --quiet --no-progress --out "$dir"; exit $? ) 2> /dev/null
  killed=$?
  if (( killed == 0 )); then bad "kill point $n: the run was not killed"; continue; fi
  if [[ -s "$dir/checkpoints/latest" ]]; then
    train --out "$dir" --resume 2> "$tmp/e.txt" || { bad "kill point $n: --resume failed: $(cat "$tmp/e.txt")"; continue; }
    how="--resume"
  else
    # No checkpoint was completed: nothing to resume, the run starts again.
    rm -rf "$dir"
    train --out "$dir" 2> "$tmp/e.txt" || { bad "kill point $n: fresh start failed: $(cat "$tmp/e.txt")"; continue; }
    how="start again"
  fi
  problems=()
  [[ "$(lines "$dir/metrics.jsonl")" == "$want_lines" ]] || problems+=("metrics differ: $(lines "$dir/metrics.jsonl" | tr '\n' ' ')")
  [[ "$(cat "$dir/checkpoints/latest")" == "$want_latest" ]] || problems+=("latest is $(cat "$dir/checkpoints/latest")")
  [[ "$(cat "$dir/checkpoints/best")" == "$want_best" ]] || problems+=("best is $(cat "$dir/checkpoints/best")")
  [[ "$(tensor_digest "$dir/checkpoints/$want_latest/model.safetensors")" == "$want_model" ]] || problems+=("final parameters differ")
  left=$(find "$dir" -name '*.tmp-*' -o -name '.incomplete-*')
  [[ -z "$left" ]] || problems+=("temporaries left: $left")
  if (( ${#problems[@]} )); then bad "kill point $n ($how): ${problems[*]}"; else passed=$((passed + 1)); fi
  rm -rf "$dir"
done
echo "kill-at-rename: $passed of $total kill points recovered exactly, $failed failed"
(( failed == 0 ))
