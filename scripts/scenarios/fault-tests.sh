#!/usr/bin/env bash
# Fault tests with real mpirun jobs of the release binary:
#  1. kill -9 of one rank mid-run: mpirun exits non-zero within KILL_EXIT_LIMIT_S (default 10 s;
#     measured 1-2 s on the 2-core development VM), the latest checkpoint
#     is whole, and --resume finishes with parameters identical to an uninterrupted run;
#  2. a NaN injected into one rank's gradient: every rank stops at that step, the error names
#     the step and the tensor, and the last good checkpoint stays;
#  3. ranks started with different configs refuse to train together.
# Every mpirun job runs under a time limit (timeout, then KILL); one that outlives it fails its
# check with "timed out" in the message.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=.build/release/disttrain
tmp=$(mktemp -d)
trap 'kill ${job_watchdog:-} ${watchdog:-} 2>/dev/null; rm -rf "$tmp"; pkill -9 -f "$tmp" 2>/dev/null' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
limit=${JOB_LIMIT_S:-300}                  # seconds any one mpirun job may take
kill_limit_ms=$(( ${KILL_EXIT_LIMIT_S:-10} * 1000 ))
mpi=(timeout -k 10 "$limit" mpirun --oversubscribe --quiet)
why() { (( $1 == 124 || $1 == 137 )) && echo " (timed out after $limit s)"; }
passed=0 failed=0
ok() { echo "fault-tests: ok: $*"; passed=$((passed + 1)); }
bad() { echo "fault-tests: FAILED: $*" >&2; failed=$((failed + 1)); }

cat > "$tmp/small.json" <<JSON
{ "model": { "encoder_hidden": [256], "decoder_hidden": [256], "latent": 8 },
  "training": { "epochs": 3, "global_batch": 128 },
  "output": { "checkpoint_every_steps": 50, "keep_checkpoints": 2 },
  "runtime": { "blas_threads": 1 } }
JSON

source scripts/scenarios/lib/tensor-digest.sh   # tensor_digest, final_digest

# --- 1. kill -9 and resume -------------------------------------------------------------------
"${mpi[@]}" -n 2 "$bin" --config "$tmp/small.json" --out "$tmp/straight" --quiet --log-level error
status=$?
final=$(cat "$tmp/straight/checkpoints/latest" 2>/dev/null)
# The job is started directly (not under timeout) so that its ranks are mpirun's children; the
# watchdog below bounds it.
mpirun --oversubscribe --quiet -n 2 "$bin" --config "$tmp/small.json" --out "$tmp/killed" --quiet --log-level error &
job=$!
( sleep "$limit"; kill -9 "$job" ) >/dev/null 2>&1 & job_watchdog=$!
for _ in $(seq 1 600); do [[ -s "$tmp/killed/checkpoints/latest" ]] && break; sleep 0.05; done
victim=$(pgrep -P "$job" | tail -1)
if (( status != 0 )) || [[ -z "$final" ]]; then
  bad "kill -9: the uninterrupted reference run failed: exit $status$(why $status), latest checkpoint '$final'"
  kill -9 "$job" 2>/dev/null; wait "$job" 2>/dev/null
elif [[ -z "$victim" ]]; then
  bad "kill -9: no rank process found under mpirun"
else
  killed_at=$(date +%s%3N)
  kill -9 "$victim"
  ( sleep 30; kill -9 "$job" ) >/dev/null 2>&1 & watchdog=$!
  wait "$job"; status=$?
  took_ms=$(( $(date +%s%3N) - killed_at ))
  kill "$watchdog" "$job_watchdog" 2>/dev/null
  latest=$(cat "$tmp/killed/checkpoints/latest")
  if (( status == 0 )); then bad "kill -9: mpirun exited 0"
  elif (( took_ms >= kill_limit_ms )); then bad "kill -9: mpirun took ${took_ms} ms to exit (limit ${kill_limit_ms} ms)"
  elif [[ "$latest" == "$final" ]]; then bad "kill -9: the run had already finished; nothing was interrupted"
  else
    ok "kill -9 of rank pid $victim: mpirun exited $status after ${took_ms} ms; latest checkpoint $latest"
    "${mpi[@]}" -n 2 "$bin" --config "$tmp/small.json" --out "$tmp/killed" --resume --quiet --log-level error
    status=$?
    if (( status == 0 )); then
      a=$(tensor_digest "$tmp/straight/checkpoints/$final/model.safetensors")
      b=$(tensor_digest "$tmp/killed/checkpoints/$(cat "$tmp/killed/checkpoints/latest")/model.safetensors")
      m1=$(tensor_digest "$tmp/straight/checkpoints/$final/optimizer.safetensors")
      m2=$(tensor_digest "$tmp/killed/checkpoints/$(cat "$tmp/killed/checkpoints/latest")/optimizer.safetensors")
      if [[ "$a" == "$b" && "$m1" == "$m2" ]]; then ok "--resume after kill -9 ends with identical parameters and moments"
      else bad "--resume after kill -9: final parameters differ ($a vs $b)"; fi
      lines=$(wc -l < "$tmp/killed/metrics.jsonl")
      [[ "$lines" == 3 ]] && ok "metrics.jsonl has one line per epoch after resume" || bad "metrics.jsonl has $lines lines after resume"
    else
      bad "--resume after kill -9 failed: exit $status$(why $status)"
    fi
  fi
fi

# --- 2. NaN injection ------------------------------------------------------------------------
"${mpi[@]}" -n 2 "$bin" --config "$tmp/small.json" --out "$tmp/nan" --poison-gradient 1:120 --quiet 2> "$tmp/nan.err"
status=$?
latest=$(cat "$tmp/nan/checkpoints/latest" 2>/dev/null)
if (( status == 0 )); then bad "NaN: exit 0"
elif (( status == 124 || status == 137 )); then bad "NaN: the job did not stop$(why $status)"
elif ! grep -q "non-finite gradient of .* at step 121" "$tmp/nan.err"; then bad "NaN: message: $(cat "$tmp/nan.err")"
elif [[ $(grep -c "disttrain: error" "$tmp/nan.err") != 1 ]]; then bad "NaN: expected one error line: $(cat "$tmp/nan.err")"
elif [[ "$latest" != "step-00000100" ]]; then bad "NaN: latest checkpoint is '$latest', expected step-00000100"
elif ls "$tmp/nan/checkpoints" | grep -q "step-0000012"; then bad "NaN: a checkpoint after the NaN was written"
else ok "NaN on rank 1 at step 121: $(cat "$tmp/nan.err")"; fi

# --- 3. ranks that disagree ------------------------------------------------------------------
"${mpi[@]}" -n 1 "$bin" --config "$tmp/small.json" --out "$tmp/dis" --seed 1 : -n 1 "$bin" --config "$tmp/small.json" --out "$tmp/dis" --seed 2 2> "$tmp/dis.err"
status=$?
if (( status != 0 )) && grep -q "ranks disagree" "$tmp/dis.err" && [[ ! -e "$tmp/dis" ]]; then ok "different configs refused: $(cat "$tmp/dis.err")"
else bad "different configs: exit $status$(why $status): $(cat "$tmp/dis.err")"; fi

echo "fault-tests: $passed passed, $failed failed"
(( failed == 0 ))
