#!/usr/bin/env bash
# Short real training jobs of the release binary under mpirun with 1, 2 and 4 ranks; checks
# exit codes, the run-directory layout, metrics fields and cross-rank agreement, and that a run
# can start from another run's weights (--init-from). Every job runs under a time limit.
#
# With E2E_KEEP=DIR the runs are kept in DIR (DIR/run1, run2, run4) for the checks that follow
# in scripts/test.sh (TensorBoard's reader on run2, PyTorch on run4's checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release/disttrain
if [[ -n ${E2E_KEEP:-} ]]; then
  tmp=$E2E_KEEP; mkdir -p "$tmp"
else
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "e2e: $*" >&2; exit 1; }

for n in 1 2 4; do
  out="$tmp/run$n"
  timeout 300 mpirun -n "$n" --oversubscribe "$bin" --config configs/cvae.json --epochs 1 --max-steps 40 \
    --checksum-every 10 --out "$out" --log-level warning > "$tmp/log$n" 2>&1 && status=0 || status=$?
  if (( status != 0 )); then
    cat "$tmp/log$n"; (( status == 124 || status == 137 )) && fail "$n ranks: mpirun timed out after 300 s"
    fail "$n ranks: mpirun exited $status"
  fi
  for f in config.json metrics.jsonl grids/epoch-001.png checkpoints/latest checkpoints/best \
           checkpoints/step-00000040/model.safetensors checkpoints/step-00000040/optimizer.safetensors \
           checkpoints/step-00000040/trainer.json; do
    [[ -s "$out/$f" ]] || fail "$n ranks: missing $f"
  done
  timeout 60 python3 - "$out/metrics.jsonl" "$n" <<'PY' || fail "$n ranks: bad metrics"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 1, lines
m = lines[0]
for k in ["epoch", "step", "train_loss", "train_bce", "train_kl", "test_loss", "samples_per_s", "seconds", "world_size"]:
    assert k in m, k
assert m["world_size"] == int(sys.argv[2]) and m["step"] == 40, m
assert abs(m["train_loss"] - m["train_bce"] - m["train_kl"]) < 1e-6 * m["train_loss"]
assert 100 < m["test_loss"] < 300, m
# The step loop allocates nothing (MPI's own calls are counted apart, in mpi_allocations_per_step).
assert m["allocations_per_step"] == 0, m
PY
  # Only rank 0 writes: exactly one checkpoint directory, and no stray files.
  [[ $(ls "$out/checkpoints" | grep -c '^step-') == 1 ]] || fail "$n ranks: unexpected checkpoints"
  for f in tb curves.svg reconstructions/epoch-001.png; do [[ -e "$out/$f" ]] || fail "$n ranks: missing $f"; done
  echo "e2e: $n ranks ok: $(head -c 200 "$out/metrics.jsonl")"
done
# --init-from: a run starts from another run's weights (as it would from PyTorch's export).
timeout 300 "$bin" --config configs/cvae.json --max-steps 1 --epochs 1 --out "$tmp/init" --quiet --log-level warning \
  --init-from "$tmp/run4/checkpoints/step-00000040/model.safetensors" || fail "--init-from"
echo "e2e: all runs ok"
