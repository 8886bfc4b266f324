#!/usr/bin/env bash
# Multi-host test on one machine: a 2-rank disttrain job across two network namespaces.
#
# Two network namespaces stand in for two hosts, A and B: each has its own loopback and one end
# of a veth pair in a private /30 that exists only inside them, and (where unshare allows) its
# own hostname. The repository (binary, configs, data) is at the same path on both, as on a
# cluster with a shared home; the run directory is not: host B sees an empty directory in its
# place (a tmpfs mounted in B's mount namespace), as on hosts with node-local disks, since only
# rank 0 reads or writes it.
#
# mpirun runs inside A with a hostfile naming the two veth addresses (1 slot each). OpenMPI's
# remote launcher (plm rsh) runs a generated agent instead of ssh: it is called as
# `agent HOST COMMAND...`, maps HOST's address to its namespace and runs the command line there
# with `ip netns exec`, as sshd would on the other machine. MPI and OpenMPI's own out-of-band
# traffic are TCP over the veth only (btl tcp,self: no shared memory; pml ob1: no UCX).
#
# Checks:
#   1. a probe job (`sh -c 'readlink /proc/self/ns/net; ip -o -4 addr; hostname'`) puts rank 0
#      in A and rank 1 in B: two different network namespaces (neither this shell's) with the
#      two veth addresses (and two hostnames);
#   2. `disttrain --config configs/cvae.json --epochs 1 --max-steps 30 --checksum-every 10`
#      exits 0, metrics.jsonl has one line with world_size 2 and step 30, and the veth carried at
#      least half a model's bytes per step in each direction (the gradient allreduce crossed it);
#   3. the same job on one host (plain mpirun -n 2, shared memory allowed) gives bit-identical
#      losses and parameters;
#   4. `--resume --max-steps 40` in the same run directory (which only rank 0 can see) exits 0
#      and ends at step 40: rank 0 reads the checkpoint and broadcasts it to host B;
#   5. the stall watchdog across hosts: rank 1 (host B) is SIGSTOPped during a job with
#      `--stall-timeout 4`; the job exits 76 with one line naming rank 1 (heard over TCP).
#
# Everything it creates (namespaces, the veth, which goes with them, processes left in them, the
# temporary directory) is removed on exit, failure and Ctrl-C included. The whole test is
# bounded by a 300 s deadline. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2 (installed
# with apt-get when missing); without them it prints `multihost: skipped: <reason>` and exits 77
# (scripts/test.sh reports a skip, which is not a pass).
# The last line is `multihost: 1 passed, 0 failed` (exit 0) or `multihost: 0 passed, 1 failed`.
#
#   bash scripts/scenarios/multihost-test.sh          # DISTTRAIN_BIN=path overrides the binary
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$PWD
deadline=$(( $(date +%s) + 300 ))
t0=$(date +%s%N)

say() { echo "multihost: $*"; }
skip() { say "skipped: $*"; exit 77; }
show() { [[ -s "$1" ]] && sed 's/^/  | /' "$1" >&2; return 0; }
fail() {  # fail MESSAGE [LOG...]
  local msg="$1"; shift
  echo "multihost: FAILED: $msg" >&2
  local f; for f in "$@"; do show "$f"; done
  say "0 passed, 1 failed"
  exit 1
}
left() { local s=$(( deadline - $(date +%s) )); (( s > 1 )) && echo "$s" || echo 1; }

# --- prerequisites ---------------------------------------------------------------------------
bin=${DISTTRAIN_BIN:-}
if [[ -z "$bin" ]]; then
  for b in .build/release/disttrain .build-mh/release/disttrain; do
    [[ -x "$b" ]] && { bin="$repo/$b"; break; }
  done
fi
[[ "$bin" == /* || -z "$bin" ]] || bin="$repo/$bin"
[[ -n "$bin" && -x "$bin" ]] || fail "no disttrain binary (swift build -c release, or set DISTTRAIN_BIN)"
command -v mpirun >/dev/null || fail "mpirun not found (bash scripts/tools/install-deps.sh)"
command -v python3 >/dev/null || fail "python3 not found (needed to read metrics.jsonl)"
[[ $(id -u) == 0 ]] || skip "not root: network namespaces need CAP_SYS_ADMIN"
if ! command -v ip >/dev/null; then
  if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    timeout 120 apt-get install -y -qq iproute2 >/dev/null 2>&1 ||
      { timeout 120 apt-get update -qq >/dev/null 2>&1 && timeout 120 apt-get install -y -qq iproute2 >/dev/null 2>&1; }
  fi
  command -v ip >/dev/null || skip "iproute2 ('ip') is missing and could not be installed"
fi

# --- two "hosts" ----------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/disttrain-multihost.XXXXXX)
source "$repo/scripts/scenarios/lib/two-hosts.sh"

# --- 1. placement probe ---------------------------------------------------------------------
probe='echo "rank=$OMPI_COMM_WORLD_RANK net=$(readlink /proc/self/ns/net) host=$(hostname) addr=$(ip -o -4 addr show scope global | awk "{print \$4}" | tr "\n" " ")"'
bounded "$(( $(left) < 60 ? $(left) : 60 ))" "${onA[@]}" "${mpi[@]}" /bin/sh -c "$probe" \
  </dev/null >"$tmp/probe.out" 2>&1
status=$?
(( status == 0 )) || fail "probe job: mpirun exited $status$( (( status == 124 )) && echo ' (timed out)')" "$tmp/probe.out" "$tmp/agent.log"
line0=$(grep '^rank=0 ' "$tmp/probe.out") line1=$(grep '^rank=1 ' "$tmp/probe.out")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
here=$(readlink /proc/self/ns/net)
net0=$(field net "$line0") net1=$(field net "$line1")
addr0=$(field addr "$line0") addr1=$(field addr "$line1")
host0=$(field host "$line0") host1=$(field host "$line1")
[[ -n "$net0" && -n "$net1" ]] || fail "probe job: expected one line from each of ranks 0 and 1" "$tmp/probe.out"
[[ "$net0" != "$net1" ]] || fail "probe job: both ranks ran in network namespace $net0" "$tmp/probe.out"
[[ "$net0" != "$here" && "$net1" != "$here" ]] || fail "probe job: a rank ran in the host's own namespace" "$tmp/probe.out"
[[ "$addr0" == "$ipA/30" && "$addr1" == "$ipB/30" ]] ||
  fail "probe job: rank 0 should be on $ipA and rank 1 on $ipB" "$tmp/probe.out"
if (( uts )); then
  [[ "$host0" == "$nsA" && "$host1" == "$nsB" ]] || fail "probe job: hostnames $host0, $host1" "$tmp/probe.out"
fi
say "placement: rank 0 in $net0 ($host0, $addr0), rank 1 in $net1 ($host1, $addr1); this shell in $here"

# --- 2. training across the veth ------------------------------------------------------------
run=$tmp/runs/mh
bytes() { ip netns exec "$nsA" cat "/sys/class/net/$vethA/statistics/$1_bytes"; }
train() {  # train LOG ARGS...: disttrain on both hosts, bounded by the deadline
  local log=$1; shift
  bounded "$(left)" "${onA[@]}" "${mpi[@]}" "$bin" --config configs/cvae.json --epochs 1 \
    --out "$run" --checksum-every 10 --log-level info "$@" </dev/null >"$log" 2>&1
}
why() { (( $1 == 124 || $1 == 137 )) && echo " (timed out)"; }
# last_metrics FILE STEP LINES: LINES lines, the last with world_size 2 and step STEP.
last_metrics() {
  python3 - "$@" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == int(sys.argv[3]), f"{len(lines)} lines, expected {sys.argv[3]}"
m = lines[-1]
assert m["world_size"] == 2, f"world_size {m['world_size']}, expected 2"
assert m["step"] == int(sys.argv[2]), f"step {m['step']}, expected {sys.argv[2]}"
PY
}
steps=30
tx0=$(bytes tx) rx0=$(bytes rx)
t1=$(date +%s%N)
train "$tmp/train.log" --max-steps "$steps"
status=$?
train_ms=$(( ($(date +%s%N) - t1) / 1000000 ))
tx=$(( $(bytes tx) - tx0 )) rx=$(( $(bytes rx) - rx0 ))
(( status == 0 )) || fail "disttrain on 2 hosts: exit $status$(why $status)" "$tmp/train.log"
last_metrics "$run/metrics.jsonl" "$steps" 1 >"$tmp/metrics.err" 2>&1 ||
  fail "metrics.jsonl after $steps steps" "$tmp/metrics.err" "$tmp/train.log"
latest=$(cat "$run/checkpoints/latest" 2>/dev/null)
model="$run/checkpoints/$latest/model.safetensors"
[[ -n "$latest" && -s "$model" ]] || fail "no checkpoint in $run" "$tmp/train.log"
mbytes=$(stat -c %s "$model")
need=$(( steps * mbytes / 2 ))   # an allreduce over 2 ranks moves about the whole buffer each way
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
(( tx >= need && rx >= need )) ||
  fail "the veth carried $(mb "$tx") out and $(mb "$rx") in, less than $(mb "$need") each way for $steps allreduces of a $(mb "$mbytes") model" "$tmp/train.log"
grep -q "^$ipB: " "$tmp/agent.log" || fail "the agent never launched anything on $ipB" "$tmp/agent.log"
say "train: exit 0, world_size 2, step $steps in ${train_ms} ms; veth carried $(mb "$tx") A->B and $(mb "$rx") B->A ($steps allreduces of a $(mb "$mbytes") model)"

# The same job on one host (this shell's namespace, default transports, shared memory included)
# with the BLAS threads each namespace rank chose (all CPUs: it was alone on its "host") must give
# bit-identical losses and parameters: nothing in the result depends on where the ranks ran.
cpus=$(getconf _NPROCESSORS_ONLN)
bounded "$(left)" mpirun --allow-run-as-root --oversubscribe -n 2 --bind-to none "$bin" \
  --config configs/cvae.json --epochs 1 --out "$tmp/ref" --checksum-every 10 --log-level warning \
  --max-steps "$steps" --threads "$cpus" </dev/null >"$tmp/ref.log" 2>&1
status=$?
(( status == 0 )) || fail "the same job on one host: exit $status$(why $status)" "$tmp/ref.log"
python3 - "$run" "$tmp/ref" "$latest" >"$tmp/same.err" 2>&1 <<'PY' || fail "2 hosts and 1 host disagree" "$tmp/same.err"
import hashlib, json, struct, sys
two, one, ckpt = sys.argv[1:4]
def metrics(d):
    m = json.loads(open(d + "/metrics.jsonl").read().splitlines()[-1])
    keys = ("epoch", "step", "world_size", "train_loss", "train_bce", "train_kl", "test_loss", "test_bce", "test_kl")
    return {k: m.get(k) for k in keys}  # the results, not the timings
def tensors(d):  # tensor bytes and shapes; the metadata names the run directory
    b = open(f"{d}/checkpoints/{ckpt}/model.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return hashlib.sha256(json.dumps(h, sort_keys=True).encode() + b[8 + n:]).hexdigest()
a, b = metrics(two), metrics(one)
assert a == b, f"metrics differ: 2 hosts {a} vs 1 host {b}"
assert tensors(two) == tensors(one), "model tensors differ"
print(a["train_loss"], a["test_loss"])
PY
say "same result as on one host: train $(cut -d' ' -f1 "$tmp/same.err"), test $(cut -d' ' -f2 "$tmp/same.err"), identical parameters"

# --- 4. resume from rank 0's checkpoint -----------------------------------------------------
t1=$(date +%s%N)
train "$tmp/resume.log" --max-steps $(( steps + 10 )) --resume
status=$?
resume_ms=$(( ($(date +%s%N) - t1) / 1000000 ))
(( status == 0 )) || fail "--resume on 2 hosts: exit $status$(why $status)" "$tmp/resume.log"
[[ $(cat "$run/checkpoints/latest" 2>/dev/null) == "step-$(printf %08d $(( steps + 10 )))" ]] ||
  fail "--resume: latest checkpoint is '$(cat "$run/checkpoints/latest" 2>/dev/null)'" "$tmp/resume.log"
tail -n 1 "$run/metrics.jsonl" > "$tmp/last.jsonl"
last_metrics "$tmp/last.jsonl" $(( steps + 10 )) 1 >"$tmp/metrics.err" 2>&1 ||
  fail "metrics.jsonl after --resume" "$tmp/metrics.err" "$tmp/resume.log"
say "resume: exit 0, from $latest to step $(( steps + 10 )) in ${resume_ms} ms (run directory on host A only$( (( hide )) || echo ', shared'))"
# --- 5. a stalled rank on the other host ---------------------------------------------------
"${onA[@]}" "${mpi[@]}" "$bin" --config configs/cvae.json --epochs 1 --out "$tmp/runs/stall" --stall-timeout 4 \
  --no-tensorboard --log-level warning </dev/null >"$tmp/stall.log" 2>&1 &
child=$!
victim=""
real=$(readlink -f "$bin")
for _ in $(seq 1 300); do
  for p in $(ip netns pids "$nsB" 2>/dev/null); do
    [[ "$(readlink "/proc/$p/exe" 2>/dev/null)" == "$real" ]] && victim=$p
  done
  [[ -n "$victim" ]] && break
  sleep 0.1
done
[[ -n "$victim" ]] || fail "stall: no disttrain process appeared on host B" "$tmp/stall.log"
sleep 3   # into the training steps (setup takes about a second)
kill -STOP "$victim"
t1=$(date +%s%N)
( sleep 60; kill -9 "$child" 2>/dev/null ) & guard=$!
wait "$child"; status=$?
child=""
kill "$guard" 2>/dev/null
stall_ms=$(( ($(date +%s%N) - t1) / 1000000 ))
kill -CONT "$victim" 2>/dev/null; kill -9 "$victim" 2>/dev/null
(( status == 76 )) || fail "stall across hosts: exit $status, expected 76" "$tmp/stall.log"
grep -Eq "^disttrain: error: stalled: rank 1 did not (reach|complete) " "$tmp/stall.log" || fail "stall across hosts: no line naming rank 1" "$tmp/stall.log"
say "stall: rank 1 on host B stopped; exit 76 after ${stall_ms} ms: $(grep '^disttrain: error' "$tmp/stall.log")"
say "total $(( ($(date +%s%N) - t0) / 1000000 )) ms"
say "1 passed, 0 failed"
