#!/usr/bin/env bash
# Fault soak: a 2-rank training job under random faults, with launch/mpirun-disttrain's restarts
# on, must end with parameters and Adam moments bitwise identical to an uninterrupted run.
#
#   bash scripts/scenarios/fault-soak.sh [--faults N] [--epochs E] [--seed S]
#
# Faults, one at a time, each at a random moment after the job has written a new checkpoint:
#   kill9  kill -9 of a random rank       -> mpirun ends the job; the launcher restarts it (--resume)
#   stop   SIGSTOP of a random rank       -> the stall watchdog (--stall-timeout 3) aborts the
#                                            job (exit 76); the launcher restarts it
#   term   SIGTERM to the launcher        -> every rank checkpoints at the next step and exits 75;
#                                            this script starts the job again with --resume (as a
#                                            scheduler's requeue would)
# It injects N faults (default 12), or stops injecting when the job finishes first, and fails if
# fewer than N were injected, if any was not survived, or if the final weights differ.
# Short variant (scripts/test.sh): --faults 4 --epochs 2.
set -uo pipefail
cd "$(dirname "$0")/../.."
faults=12 epochs=6 seed=${RANDOM}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --faults) faults=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "fault-soak: unknown argument $1" >&2; exit 2 ;;
  esac
done
RANDOM=$seed
bin=$PWD/.build/release/disttrain
launcher=$PWD/launch/mpirun-disttrain
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
started=$(date +%s)

cat > "$tmp/soak.json" <<JSON
{ "model": { "encoder_hidden": [256], "decoder_hidden": [256], "latent": 8 },
  "training": { "epochs": $epochs, "global_batch": 128 },
  "output": { "checkpoint_every_steps": 40, "keep_checkpoints": 3, "grid_every": 0 },
  "runtime": { "blas_threads": 1, "stall_timeout_s": 3 } }
JSON
args=(--config "$tmp/soak.json" --no-tensorboard --no-progress --quiet)
run="$tmp/soak"

source scripts/scenarios/lib/tensor-digest.sh   # tensor_digest, final_digest
rank_pids() {  # pids of the disttrain ranks of the soak job
  local p
  for p in $(pgrep -f "$bin .*$run" ); do
    grep -qz "^OMPI_COMM_WORLD_RANK=" "/proc/$p/environ" 2>/dev/null && echo "$p"
  done
}
latest() { cat "$run/checkpoints/latest" 2>/dev/null; }

echo "fault-soak: seed $seed, $faults faults, $epochs epochs; reference run first"
timeout 900 "$launcher" -n 2 --oversubscribe --threads-per-rank 1 -- "${args[@]}" --out "$tmp/ref" 2> "$tmp/ref.err" \
  || { echo "fault-soak: FAILED: reference run: $(cat "$tmp/ref.err")"; exit 1; }

injected=() survived=0 requeues=0 job=0 resume=()
start_job() {
  "$launcher" -n 2 --oversubscribe --threads-per-rank 1 --max-restarts 1000 -- "${args[@]}" --out "$run" "${resume[@]}" 2>> "$tmp/soak.err" &
  job=$!
}
start_job
deadline=$(( $(date +%s) + 1800 ))
while (( ${#injected[@]} < faults )) && (( $(date +%s) < deadline )); do
  # Wait for progress: a checkpoint newer than the one before the last fault.
  before=$(latest)
  until [[ -n "$(latest)" && "$(latest)" != "$before" ]] || ! kill -0 "$job" 2>/dev/null; do sleep 0.1; done
  if ! kill -0 "$job" 2>/dev/null; then
    wait "$job"; status=$?
    if (( status == 75 )); then requeues=$((requeues + 1)); resume=(--resume); start_job; continue; fi
    echo "fault-soak: the job ended (status $status) after ${#injected[@]} faults"; break
  fi
  sleep "0.$(( RANDOM % 10 ))"
  pids=($(rank_pids))
  (( ${#pids[@]} == 2 )) || continue
  victim=${pids[$(( RANDOM % 2 ))]}
  kinds=(kill9 stop term)
  kind=${kinds[$(( RANDOM % 3 ))]}
  at=$(latest)
  case "$kind" in
    kill9) kill -9 "$victim" ;;
    stop)  kill -STOP "$victim" ;;
    term)  kill -TERM "$job" ;;
  esac
  injected+=("$kind@$at")
  echo "fault-soak: fault ${#injected[@]}: $kind (pid $victim) after checkpoint $at"
  if [[ $kind == term ]]; then
    wait "$job"; status=$?
    if (( status == 75 )); then survived=$((survived + 1)); requeues=$((requeues + 1)); resume=(--resume); start_job
    elif (( status == 0 )); then survived=$((survived + 1)); echo "fault-soak: the job had just finished"; break
    else echo "fault-soak: FAILED: SIGTERM gave exit status $status"; break; fi
  else
    # The launcher must restart the job: wait for new rank processes.
    for _ in $(seq 1 600); do
      now=($(rank_pids)); [[ ${#now[@]} == 2 && ! " ${now[*]} " =~ " $victim " ]] && break
      kill -0 "$job" 2>/dev/null || break
      sleep 0.1
    done
    kill -CONT "$victim" 2>/dev/null; kill -9 "$victim" 2>/dev/null
    if kill -0 "$job" 2>/dev/null; then survived=$((survived + 1))
    else wait "$job"; status=$?; (( status == 0 )) && survived=$((survived + 1)); echo "fault-soak: the job exited $status after the fault"; break; fi
  fi
done
# Let the job finish (requeued once more if the last fault was a stop).
while true; do
  wait "$job"; status=$?
  if (( status == 75 )); then requeues=$((requeues + 1)); resume=(--resume); start_job; continue; fi
  break
done
restarts=$(grep -c "^mpirun-disttrain: restart" "$tmp/soak.err")
a=$(final_digest "$run"); b=$(final_digest "$tmp/ref")
echo "fault-soak: faults injected: ${#injected[@]} (${injected[*]})"
echo "fault-soak: survived: $survived; launcher restarts: $restarts; requeues after SIGTERM: $requeues; final status $status; $(( $(date +%s) - started )) s"
grep -v "^mpirun-disttrain: restart" "$tmp/soak.err" | sort | uniq -c | sed 's/^/fault-soak: stderr: /' | head -20
if (( status == 0 )) && (( ${#injected[@]} >= faults )) && (( survived == ${#injected[@]} )) && [[ -n "${a// /}" && "$a" == "$b" ]]; then
  echo "fault-soak: ok: final parameters and moments bitwise identical to the uninterrupted run"
  exit 0
fi
echo "fault-soak: FAILED: status $status, ${#injected[@]}/$faults faults, $survived survived, digests $a vs $b"
exit 1
