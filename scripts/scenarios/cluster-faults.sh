#!/usr/bin/env bash
# What clusters do to jobs, with real mpirun jobs of the release binary (issue 13):
#  1. stall watchdog: SIGSTOP of rank 1 and of rank 0 at 2 ranks, of rank 2 at 4 ranks: a
#     warning at half the timeout and one error line naming the rank, exit 76; --resume then
#     ends with parameters bitwise identical to an uninterrupted run;
#  2. graceful stop: SIGTERM, SIGINT and SIGUSR1 to one rank only (also during start-up, before
#     MPI is up), SIGTERM to mpirun itself and to launch/mpirun-disttrain: exit 75, one line naming a checkpoint at the stop step
#     (mid-epoch), --resume bitwise identical; a second signal exits at once (77);
#  3. launch/mpirun-disttrain --max-restarts: kill -9 of a rank is restarted with --resume (logged
#     with count and step) and ends bitwise identical; no restart after bad input or before the
#     first checkpoint;
#  4. checkpoint integrity: a flipped byte / a truncated file in the latest checkpoint: verify
#     names it, --resume-from refuses, --resume falls back to the newest intact checkpoint and
#     ends bitwise identical;
#  5. one job per run directory: a second job refuses naming the first (host, pid); after the
#     first is killed the lock is taken over;
#  6. eval of a 10-byte model.safetensors: one complete error line;
#  7. (group "zero") ZeRO-1 with the overlapped parameter allgather: SIGTERM to rank 1 and a
#     stall of rank 1 at 2 ranks, each resumed bitwise to a sharded uninterrupted run.
# Every job runs under `timeout`. Prints "cluster-faults: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=$PWD/.build/release/disttrain
launcher=$PWD/launch/mpirun-disttrain
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --quiet --bind-to none)
passed=0 failed=0
ok() { echo "cluster-faults: ok: $*"; passed=$((passed + 1)); }
bad() { echo "cluster-faults: FAILED: $*" >&2; failed=$((failed + 1)); }
only=${CLUSTER_FAULTS_ONLY:-all}   # run one group: stall, signal, zero, restart, integrity, lock, eval
want() { [[ "$only" == all || "$only" == *"$1"* ]]; }

cat > "$tmp/small.json" <<JSON
{ "model": { "encoder_hidden": [256], "decoder_hidden": [256], "latent": 8 },
  "training": { "epochs": 2, "global_batch": 128 },
  "output": { "checkpoint_every_steps": 50, "keep_checkpoints": 3, "grid_every": 0 },
  "runtime": { "blas_threads": 1 } }
JSON
common=(--config "$tmp/small.json" --no-tensorboard --no-progress)

source scripts/scenarios/lib/tensor-digest.sh   # tensor_digest, final_digest
# PID of rank R under the job whose (launcher or mpirun) pid is J.
rank_pid() {
  local j=$1 r=$2 p
  for p in $(pgrep -f "$bin" ); do
    grep -qz "^OMPI_COMM_WORLD_RANK=$r$" "/proc/$p/environ" 2>/dev/null || continue
    # must descend from J
    local q=$p
    while [[ -n "$q" && "$q" != 1 ]]; do
      [[ "$q" == "$j" ]] && { echo "$p"; return 0; }
      q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null)
    done
  done
  return 1
}
wait_latest() {  # RUN [SECONDS]: waits until RUN/checkpoints/latest exists
  for _ in $(seq 1 $(( ${2:-60} * 20 ))); do [[ -s "$1/checkpoints/latest" ]] && return 0; sleep 0.05; done
  return 1
}
ms() { date +%s%3N; }
same_as() {  # NAME RUN REFERENCE
  local a b
  a=$(final_digest "$2"); b=$(final_digest "$3")
  if [[ -n "${a// /}" && "$a" == "$b" ]]; then ok "$1: --resume ends bitwise identical to the uninterrupted run"
  else bad "$1: final parameters differ from the uninterrupted run ($a vs $b)"; fi
}
# The ZeRO-1 group (below) reruns some checks sharded: `zero` holds its flags, `tag` names its
# runs and its references ($tmp/ref2$tag); both empty otherwise.
zero=() tag=""
resume() {  # RANKS RUN [extra flags]
  local n=$1 run=$2; shift 2
  timeout 300 "${mpi[@]}" -n "$n" "$bin" "${common[@]}" "${zero[@]}" --out "$run" --resume --quiet "$@" 2> "$run.resume.err"
}

# --- uninterrupted references -----------------------------------------------------------------
timeout 300 "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$tmp/ref2" --quiet || bad "reference run (2 ranks) failed"
if want stall; then
  timeout 300 "${mpi[@]}" -n 4 "$bin" "${common[@]}" --out "$tmp/ref4" --quiet || bad "reference run (4 ranks) failed"
fi

# --- 1. stall watchdog ------------------------------------------------------------------------
stall() {  # NAME RANKS VICTIM
  local name=$1 n=$2 victim=$3 run="$tmp/stall-$1$tag"
  "${mpi[@]}" -n "$n" "$bin" "${common[@]}" "${zero[@]}" --out "$run" --quiet --stall-timeout 4 2> "$run.err" &
  local job=$!
  wait_latest "$run" || { bad "$name: no checkpoint appeared"; kill -9 "$job"; return; }
  local pid; pid=$(rank_pid "$job" "$victim") || { bad "$name: rank $victim not found"; kill -9 "$job"; return; }
  kill -STOP "$pid"
  local t0; t0=$(ms)
  ( sleep 60; kill -9 "$job" 2>/dev/null ) & local guard=$!
  wait "$job"; local status=$?
  local took=$(( $(ms) - t0 ))
  kill "$guard" 2>/dev/null; kill -CONT "$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null
  local errors; errors=$(grep -c "^disttrain: error" "$run.err")
  if (( status != 76 )); then bad "$name: exit status $status (expected 76): $(head -c 600 "$run.err")"
  # A rank stopped before the collective "has not reached" it; one stopped inside it (likely when
  # the machine is busy and ranks wait long in collectives) "has not completed" it.
  elif ! grep -Eq "^disttrain: warning: rank $victim has not (reached|completed) the collective of step [0-9]* after 2 s" "$run.err"; then bad "$name: no warning at half the timeout naming rank $victim: $(cat "$run.err")"
  elif ! grep -Eq "^disttrain: error: stalled: rank $victim did not (reach|complete) the collective of step [0-9]* within 4 s" "$run.err"; then bad "$name: error line: $(cat "$run.err")"
  elif (( errors != 1 )); then bad "$name: $errors error lines: $(cat "$run.err")"
  elif (( took > 30000 )); then bad "$name: took $took ms"
  else ok "$name: exit 76 after $took ms: $(grep '^disttrain: error' "$run.err")"
  fi
  if resume "$n" "$run"; then same_as "$name" "$run" "$tmp/ref$n$tag"; else bad "$name: --resume failed: $(cat "$run.resume.err")"; fi
}
if want stall; then
  stall "stall of rank 1 at 2 ranks" 2 1
  stall "stall of rank 0 at 2 ranks" 2 0
  stall "stall of rank 2 at 4 ranks" 4 2
fi

# --- 2. stop signals --------------------------------------------------------------------------
# stopped NAME RUN STATUS STARTMS: checks a graceful stop's outcome, then resumes.
stopped() {
  local name=$1 run=$2 status=$3 t0=$4 took=$(( $(ms) - $4 ))
  local line; line=$(grep "^disttrain: stopped by" "$run.err")
  local ckpt; ckpt=$(sed -n 's/.*checkpoint \([^ ]*\) written.*/\1/p' <<< "$line")
  if (( status != 75 )); then bad "$name: exit status $status (expected 75): $(head -c 600 "$run.err")"
  elif [[ $(grep -c "^disttrain:" "$run.err") != 1 || -z "$ckpt" ]]; then bad "$name: expected one line naming the checkpoint: $(cat "$run.err")"
  elif [[ ! -s "$ckpt/trainer.json" || "$(cat "$run/checkpoints/latest")" != "$(basename "$ckpt")" ]]; then bad "$name: $ckpt is not the latest complete checkpoint"
  elif (( took > 20000 )); then bad "$name: took $took ms to stop"
  else ok "$name: exit 75 after $took ms: $line"
  fi
  if resume 2 "$run"; then same_as "$name" "$run" "$tmp/ref2$tag"; else bad "$name: --resume failed: $(cat "$run.resume.err")"; fi
}
signal_one_rank() {  # SIG RANK
  local sig=$1 victim=$2 run="$tmp/sig-$1-rank$2$tag"
  "${mpi[@]}" -n 2 "$bin" "${common[@]}" "${zero[@]}" --out "$run" --quiet 2> "$run.err" &
  local job=$!
  wait_latest "$run" || { bad "SIG$sig: no checkpoint appeared"; kill -9 "$job"; return; }
  sleep 0.3
  local pid; pid=$(rank_pid "$job" "$victim")
  local t0; t0=$(ms)
  kill -"$sig" "$pid"
  timeout 60 bash -c "while kill -0 $job 2>/dev/null; do sleep 0.05; done"
  wait "$job"; local status=$?
  stopped "${tag:+ZeRO-1, overlapped allgather: }SIG$sig to rank $victim only" "$run" "$status" "$t0"
}
# A stop signal during start-up (MPI init, data loading): the handlers are in before MPI starts,
# so the rank stops gracefully at the first step instead of dying the default way.
signal_at_startup() {
  local run="$tmp/sig-startup" pid="" t0
  "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --quiet 2> "$run.err" &
  local job=$!
  for _ in $(seq 1 400); do pid=$(rank_pid "$job" 1) && break; sleep 0.01; done
  [[ -n "$pid" ]] || { bad "SIGTERM at start-up: rank 1 not found"; kill -9 "$job"; return; }
  # A signal before the process runs any of its own code (loader, runtime start) can only kill
  # it the default way: wait until its SIGTERM handler shows in /proc (SigCgt bit 15), which is
  # the first thing disttrain does, before MPI starts and the data loads.
  local caught=0
  for _ in $(seq 1 400); do
    local mask; mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
    [[ -n "$mask" ]] && (( 0x$mask & 0x4000 )) && { caught=1; break; }
    sleep 0.005
  done
  (( caught )) || { bad "SIGTERM at start-up: rank 1 never installed its handler"; kill -9 "$job"; return; }
  t0=$(ms); kill -TERM "$pid"
  timeout 60 bash -c "while kill -0 $job 2>/dev/null; do sleep 0.05; done"
  wait "$job"; local status=$?
  if [[ -e "$run/checkpoints/step-00000001" ]] || grep -q "at step 1 " "$run.err"; then
    stopped "SIGTERM to rank 1 during start-up" "$run" "$status" "$t0"
  else bad "SIGTERM at start-up: expected a stop at step 1 (exit $status): $(head -c 600 "$run.err")"; fi
}
if want signal; then
  signal_one_rank TERM 1
  signal_at_startup
  signal_one_rank INT 0
  signal_one_rank USR1 1
  # SIGTERM to mpirun itself: mpirun passes SIGTERM on ~1 s later and SIGKILLs 1 s after that.
  run="$tmp/sig-mpirun"
  "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --quiet 2> "$run.err" &
  job=$!
  if wait_latest "$run"; then
    sleep 0.3; t0=$(ms); kill -TERM "$job"; wait "$job"; status=$?
    # mpirun reports its own status (1) however the ranks ended; what counts is the checkpoint.
    line=$(grep "^disttrain: stopped by" "$run.err")
    if [[ -n "$line" ]]; then ok "SIGTERM to mpirun: ranks saved within mpirun's 1 s grace (mpirun exit $status after $(( $(ms) - t0 )) ms): $line"
    else bad "SIGTERM to mpirun: no stop line (mpirun exit $status): $(head -c 600 "$run.err")"; fi
    if resume 2 "$run"; then same_as "SIGTERM to mpirun" "$run" "$tmp/ref2"; else bad "SIGTERM to mpirun: --resume failed: $(cat "$run.resume.err")"; fi
  else bad "SIGTERM to mpirun: no checkpoint appeared"; kill -9 "$job"; fi
  # SIGTERM to the launcher: forwarded as SIGUSR1 to every rank.
  run="$tmp/sig-launcher"
  "$launcher" -n 2 --oversubscribe --threads-per-rank 1 -- "${common[@]}" --out "$run" --quiet 2> "$run.err" &
  job=$!
  if wait_latest "$run"; then
    sleep 0.3; t0=$(ms); kill -TERM "$job"; wait "$job"; status=$?
    stopped "SIGTERM to launch/mpirun-disttrain" "$run" "$status" "$t0"
  else bad "launcher: no checkpoint appeared"; kill -9 "$job"; fi
  # A second signal: two signals delivered together (the rank is stopped while they are sent).
  run="$tmp/sig-twice"
  "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --quiet 2> "$run.err" &
  job=$!
  if wait_latest "$run"; then
    pid=$(rank_pid "$job" 0); before=$(cat "$run/checkpoints/latest")
    kill -STOP "$pid"; kill -USR1 "$pid"; kill -TERM "$pid"; t0=$(ms); kill -CONT "$pid"
    ( sleep 30; kill -9 "$job" 2>/dev/null ) & guard=$!
    wait "$job"; status=$?; kill "$guard" 2>/dev/null
    if (( status == 77 )) && grep -q "^disttrain: error: second stop signal: exiting at once" "$run.err"; then
      ok "second signal: exit 77 after $(( $(ms) - t0 )) ms: $(grep '^disttrain:' "$run.err" | head -1)"
    else bad "second signal: exit $status: $(head -c 600 "$run.err")"; fi
    if resume 2 "$run"; then same_as "second signal" "$run" "$tmp/ref2"; else bad "second signal: --resume failed: $(cat "$run.resume.err")"; fi
  else bad "second signal: no checkpoint appeared"; kill -9 "$job"; fi
fi

# --- 3. automatic restart ---------------------------------------------------------------------
# --- ZeRO-1 with the overlapped parameter allgather: a stop signal and a stall -----------------
# Sharded, the next forward's parameter gathers are in flight at every step end: the step
# checkpoints (every 50 steps) and the stop's checkpoint must wait for them, and a rank stalled
# while the others wait in a gather is named like any other stall. Each resumes bitwise to a
# sharded uninterrupted run.
if want zero; then
  zero=(--shard-optimizer) tag="-zero"
  timeout 300 "${mpi[@]}" -n 2 "$bin" "${common[@]}" "${zero[@]}" --out "$tmp/ref2$tag" --quiet || bad "reference run (2 ranks, sharded) failed"
  signal_one_rank TERM 1
  stall "ZeRO-1, overlapped allgather: stall of rank 1 at 2 ranks" 2 1
  zero=() tag=""
fi

if want restart; then
  run="$tmp/restart"
  "$launcher" -n 2 --oversubscribe --threads-per-rank 1 --max-restarts 2 -- "${common[@]}" --out "$run" --quiet 2> "$run.err" &
  job=$!
  if wait_latest "$run"; then
    sleep 0.3; kill -9 "$(rank_pid "$job" 1)"
    timeout 300 bash -c "while kill -0 $job 2>/dev/null; do sleep 0.1; done"; wait "$job"; status=$?
    if (( status == 0 )) && grep -q "^mpirun-disttrain: restart 1 of 2 after exit status [0-9]*: resuming .* from step-[0-9]* (step [0-9]*)" "$run.err"; then
      ok "kill -9 under --max-restarts 2: $(grep '^mpirun-disttrain: restart' "$run.err")"
      same_as "restart after kill -9" "$run" "$tmp/ref2"
    else bad "restart: exit $status: $(head -c 800 "$run.err")"; fi
  else bad "restart: no checkpoint appeared"; kill -9 "$job"; fi
  # Bad input: its own status, no restart.
  echo '{"training": {"epoch": 2}}' > "$tmp/bad.json"
  timeout 60 "$launcher" -n 2 --oversubscribe --max-restarts 3 -- --config "$tmp/bad.json" --out "$tmp/badrun" 2> "$tmp/bad.err"; status=$?
  if (( status == 65 )) && ! grep -q restart "$tmp/bad.err" && [[ $(grep -c "^disttrain: error" "$tmp/bad.err") == 1 ]]; then ok "bad config: exit 65, not restarted: $(cat "$tmp/bad.err")"
  else bad "bad config: exit $status: $(cat "$tmp/bad.err")"; fi
  # A failure before the first checkpoint: not restarted.
  run="$tmp/early"
  "$launcher" -n 2 --oversubscribe --threads-per-rank 1 --max-restarts 3 -- "${common[@]}" --out "$run" --quiet --poison-gradient 1:10 2> "$run.err"; status=$?
  if (( status == 1 )) && grep -q "^mpirun-disttrain: not restarting: the job failed (exit status 1) before its run directory" "$run.err"; then ok "failure before the first checkpoint: not restarted"
  else bad "failure before the first checkpoint: exit $status: $(cat "$run.err")"; fi
fi

# --- 4. checkpoint integrity ------------------------------------------------------------------
flip_byte() { python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x40; open(p,'wb').write(b)" "$1"; }
integrity() {  # NAME FILE HOW(flip|truncate)
  local name=$1 file=$2 how=$3 run="$tmp/integrity-$3"
  timeout 300 "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --quiet --max-steps 230 || { bad "$name: run failed"; return; }
  local latest; latest=$(cat "$run/checkpoints/latest")
  local target="$run/checkpoints/$latest/$file"
  if [[ $how == flip ]]; then flip_byte "$target"; else truncate -s $(( $(stat -c %s "$target") / 2 )) "$target"; fi
  timeout 60 "$bin" verify --checkpoint "$run" > "$run.verify" 2> "$run.verify.err"; local status=$?
  if (( status == 1 )) && grep -q "^$run/checkpoints/$latest: DAMAGED: $target: " "$run.verify" && [[ $(grep -c ": intact" "$run.verify") -ge 1 ]]; then
    ok "$name: verify: $(grep DAMAGED "$run.verify")"
  else bad "$name: verify exit $status: $(cat "$run.verify" "$run.verify.err")"; fi
  timeout 60 "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$tmp/from-damaged-$how" --resume-from "$run/checkpoints/$latest" --quiet 2> "$run.from.err"; status=$?
  if (( status == 65 )) && [[ $(grep -c "^disttrain: error" "$run.from.err") == 1 ]] && grep -q "$target" "$run.from.err"; then ok "$name: --resume-from refuses: $(cat "$run.from.err")"
  else bad "$name: --resume-from exit $status: $(cat "$run.from.err")"; fi
  timeout 300 "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --resume --no-progress 2> "$run.resume.err" > /dev/null; status=$?
  if (( status == 0 )) && grep -q "warning: checkpoint $latest is damaged: $target" "$run.resume.err" && grep -q "warning: resuming from step-[0-9]*, the newest intact checkpoint (step [0-9]*)" "$run.resume.err"; then
    ok "$name: --resume falls back: $(grep 'resuming from' "$run.resume.err" | head -1)"
    same_as "$name" "$run" "$tmp/ref2"
  else bad "$name: --resume exit $status: $(cat "$run.resume.err")"; fi
}
if want integrity; then
  integrity "flipped byte in model.safetensors" model.safetensors flip
  integrity "truncated optimizer.safetensors" optimizer.safetensors truncate
fi

# --- 5. one job per run directory ---------------------------------------------------------------
if want lock; then
  run="$tmp/locked"
  "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --quiet 2> "$run.err" &
  job=$!
  if wait_latest "$run"; then
    holder=$(rank_pid "$job" 0)
    timeout 60 "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --resume --quiet 2> "$run.second.err"; status=$?
    if (( status == 73 )) && [[ $(grep -c "^disttrain: error" "$run.second.err") == 1 ]] && grep -q "in use by another job (host $(hostname), pid $holder," "$run.second.err"; then
      ok "second job on a live run directory: exit 73: $(cat "$run.second.err")"
    else bad "second job: exit $status (holder pid $holder): $(cat "$run.second.err")"; fi
    kill -9 "$holder"; wait "$job"
    timeout 300 "${mpi[@]}" -n 2 "$bin" "${common[@]}" --out "$run" --resume --log-level notice 2> "$run.third.err" > /dev/null; status=$?
    if (( status == 0 )) && grep -q "took over $run/.lock from a job that is gone (host $(hostname), pid $holder," "$run.third.err"; then
      ok "lock of a killed job taken over: $(grep 'took over' "$run.third.err")"
      same_as "lock takeover" "$run" "$tmp/ref2"
    else bad "takeover: exit $status: $(cat "$run.third.err")"; fi
    [[ ! -e "$run/.lock" ]] && ok "a finished job removes its lock file" || bad "lock file left after a finished job"
  else bad "lock: no checkpoint appeared"; kill -9 "$job"; fi
fi

# --- 6. eval of a model.safetensors with an absurd header length --------------------------------
if want eval; then
  mkdir -p "$tmp/tiny"
  python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<Q', 1<<62) + b'{}')" "$tmp/tiny/model.safetensors"
  timeout 60 "$bin" eval --checkpoint "$tmp/tiny/model.safetensors" > "$tmp/eval.out" 2> "$tmp/eval.err"; status=$?
  if (( status != 0 )) && [[ $(wc -l < "$tmp/eval.err") == 1 ]] && [[ $(tail -c 1 "$tmp/eval.err" | od -An -c | tr -d ' ') == '\n' ]] \
     && grep -q "^disttrain: error: .*$tmp/tiny/model.safetensors.*header length" "$tmp/eval.err"; then ok "eval of a 10-byte file: exit $status: $(cat "$tmp/eval.err")"
  else bad "eval of a 10-byte file: exit $status: $(od -c "$tmp/eval.err" | head -5)"; fi
fi

echo "cluster-faults: $passed passed, $failed failed"
(( failed == 0 ))
