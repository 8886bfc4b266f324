#!/usr/bin/env bash
# The test command: builds, runs every test suite in one process, then the MPI suite across
# 2, 3 and 4 real ranks, then the scenarios (scripts/scenarios/) with real mpirun jobs. Prints a
# closing tally: `checks: N passed, M failed, K skipped`.
#
# Every check runs under a time limit; one that outlives it is killed and counts as failed,
# named with its step. A scenario that cannot run here (no root for network namespaces, no
# PyTorch, no package index for TensorBoard) exits 77 after a "skipped: <reason>" line: it is
# reported on its own line and is NOT a pass. Any skipped check makes this script exit
# non-zero, unless ALLOW_SKIPS=1 (for a workstation without root; CI installs what every
# check needs, see scripts/tools/install-deps.sh, so nothing skips there).
#
#   bash scripts/test.sh                 # everything
#   ONLY="swift|faults" bash scripts/test.sh   # only the checks whose name matches this regex
set -uo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1   # 4 ranks on a 2-core machine
SKIP=77                                      # the exit status of a check that could not run
passed=0 failed=0 skipped=0 failures=() skips=()
work=$(mktemp -d /tmp/disttrain-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# step NAME SECONDS COMMAND...: runs one check under a time limit (TERM, then KILL 10 s later)
# and records its outcome: exit 0 passed, 77 skipped, a timeout or anything else failed.
step() {
  local name=$1 limit=$2; shift 2
  if [[ -n ${ONLY:-} ]] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  echo "==> $name (time limit ${limit} s)"
  local start=$SECONDS status
  timeout -k 10 "$limit" "$@" </dev/null
  status=$?
  local took=$((SECONDS - start))
  case $status in
    0) passed=$((passed + 1)); echo "<== passed: $name (${took} s)" ;;
    "$SKIP") skipped=$((skipped + 1)); skips+=("$name"); echo "<== SKIPPED: $name (${took} s)" ;;
    124|137) failed=$((failed + 1)); failures+=("$name: timed out after ${limit} s")
             echo "<== FAILED: $name: timed out after ${limit} s, killed" ;;
    *) failed=$((failed + 1)); failures+=("$name: exit $status"); echo "<== FAILED: $name: exit $status (${took} s)" ;;
  esac
}

# One optimized build for everything: tests exercise the code users run (Swift's SIMD code is
# orders of magnitude slower unoptimized), and -enable-testing allows @testable imports.
build=(-c release -Xswiftc -enable-testing)
if ! timeout -k 10 1800 swift build "${build[@]}" --build-tests; then
  echo "build failed (or timed out after 1800 s)"; echo "checks: 0 passed, 1 failed, 0 skipped"; exit 1
fi
tests=.build/release/disttrainPackageTests.xctest

# Python packages Debian does not ship (TensorBoard, safetensors), in a venv from PyPI.
venv_python=${DISTTRAIN_TB_VENV:-/tmp/disttrain-tb-venv}/bin/python
step "Python venv from PyPI (TensorBoard, safetensors)" 900 bash scripts/tools/python-venv.sh
step "swift test (all suites, one process)" 900 env DISTTRAIN_PYTHON="$venv_python" bash scripts/tools/swift-tests.sh
step "MPI suite on 2 ranks" 300 mpirun -n 2 "$tests" --testing-library swift-testing --filter MPITests
step "MPI suite on 3 ranks (uneven shares) and 4 ranks" 400 bash -c "mpirun -n 3 '$tests' --testing-library swift-testing --filter MPITests && mpirun -n 4 '$tests' --testing-library swift-testing --filter MPITests"
step "ZeRO-1 on 1 real rank: sharded vs unsharded, overlapped vs blocking parameter allgather, resume" 300 mpirun -n 1 "$tests" --testing-library swift-testing --filter 'MPITests/(rangeAllgather|overlappedGather|shardedOptimizerMatches)'
step "SyncBN, the VQ EMA codebook statistics and dead-code restart across 2 and 4 real ranks" 300 bash -c "mpirun -n 2 '$tests' --testing-library swift-testing --filter SyncBatchNormAcrossRanks && mpirun -n 4 '$tests' --testing-library swift-testing --filter SyncBatchNormAcrossRanks"
# e2e keeps its 2- and 4-rank runs in $work for the TensorBoard and PyTorch checks after it.
step "training jobs under mpirun (1, 2, 4 ranks)" 600 env E2E_KEEP="$work/e2e" bash scripts/scenarios/e2e.sh
step "TensorBoard's reader on the 2-rank run" 600 bash scripts/scenarios/tb-check.sh "$work/e2e/run2"
step "TensorBoard's reader after a resume (tb-check --self-test)" 600 bash scripts/scenarios/tb-check.sh --self-test
step "PyTorch interop on the 4-rank checkpoint, both directions" 900 \
  bash scripts/scenarios/pytorch-interop.sh "$work/e2e/run4/checkpoints/step-00000040"
step "PyTorch interop on a conv model and the BatchNorm + dropout model (30-step runs, both directions)" 1200 \
  bash -c 'bash scripts/scenarios/pytorch-interop.sh --train configs/conv-cvae.json && bash scripts/scenarios/pytorch-interop.sh --train configs/cvae-bn-dropout.json'
step "PyTorch interop on the VQ-VAE (30-step run, both directions)" 600 \
  bash scripts/scenarios/pytorch-interop.sh --train configs/vq-vae.json
step "variants: short run + every command" 900 bash scripts/scenarios/variants-check.sh
step "multi-host: 2 ranks across two network namespaces, stall across hosts" 400 bash scripts/scenarios/multihost-test.sh
step "determinism: the same model bits at 1-4 ranks, 1-2 threads, two hosts, kill -9 and resume on fewer ranks; a ZeRO-1 checkpoint resumed on 2 and 1 ranks, sharded or not" 600 bash scripts/scenarios/determinism-test.sh
step "faults: kill -9 and resume, NaN injection, disagreeing ranks" 600 bash scripts/scenarios/fault-tests.sh
step "bad input: issue 17 reproductions, kill at every rename" 1800 bash scripts/scenarios/bad-input-tests.sh
step "cluster faults: stalls, stop signals, restarts, corrupted checkpoints, run lock" 1500 bash scripts/scenarios/cluster-faults.sh
step "fault soak (short): 4 random faults, restarts on, bitwise result" 900 bash scripts/scenarios/fault-soak.sh --faults 4 --epochs 2 --seed 13

echo
(( skipped )) && printf 'skipped: %s\n' "${skips[@]}"
(( failed )) && printf 'failed: %s\n' "${failures[@]}"
echo "checks: $passed passed, $failed failed, $skipped skipped"
(( failed == 0 )) || exit 1
if (( skipped )); then
  if [[ ${ALLOW_SKIPS:-0} == 1 ]]; then echo "ALLOW_SKIPS=1: skipped checks tolerated (not on CI)"; exit 0; fi
  echo "a skipped check is not a pass: install what it needs (bash scripts/tools/install-deps.sh), or set ALLOW_SKIPS=1 locally"
  exit 1
fi
