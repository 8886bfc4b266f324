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
# Threads (runtime.threading): in pool mode 1 rank x 2 threads trains to the same tensor bytes as
# run1's single thread (products cut by shape, passes in fixed chunks); OpenBLAS mode (its own
# threads for the products) trains to within rounding of it.
for mode in pool openblas; do
  timeout 300 mpirun -n 1 --bind-to none "$bin" --config configs/cvae.json --epochs 1 --max-steps 40 --threads 2 \
    --threading "$mode" --out "$tmp/threads-$mode" --log-level warning --no-tensorboard > "$tmp/log-threads-$mode" 2>&1 \
    || { cat "$tmp/log-threads-$mode"; fail "1 rank x 2 threads, --threading $mode failed"; }
done
python3 scripts/tools/safetensors-tensors-equal.py "$tmp/run1/checkpoints/step-00000040/model.safetensors" \
  "$tmp/threads-pool/checkpoints/step-00000040/model.safetensors" || fail "pool mode: 2 threads give other bits than 1"
timeout 60 python3 - "$tmp/threads-pool/metrics.jsonl" "$tmp/threads-openblas/metrics.jsonl" <<'PY' || fail "--threading openblas disagrees with pool mode"
import json, sys
pool, openblas = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:3])
assert abs(pool["test_loss"] - openblas["test_loss"]) < 0.01 * pool["test_loss"], (pool["test_loss"], openblas["test_loss"])
assert pool["allocations_per_step"] == 0 and openblas["allocations_per_step"] == 0, (pool, openblas)
assert pool["blas_allocations_per_step"] == 0, pool  # single-threaded OpenBLAS calls allocate nothing
PY
echo "e2e: 1 rank x 2 threads: pool mode bitwise equal to 1 thread, OpenBLAS mode within 1% of its test loss"
# --init-from: a run starts from another run's weights (as it would from PyTorch's export).
timeout 300 "$bin" --config configs/cvae.json --max-steps 1 --epochs 1 --out "$tmp/init" --quiet --log-level warning \
  --init-from "$tmp/run4/checkpoints/step-00000040/model.safetensors" || fail "--init-from"
echo "e2e: all runs ok"
