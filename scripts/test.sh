#!/usr/bin/env bash
# The test command: builds, runs every test suite in one process, then the MPI suite across
# 2 and 4 real ranks, then short real training jobs under mpirun. Prints a closing tally.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1   # 4 ranks on a 2-core machine
passed=0 failed=0 names=()
step() {  # step NAME COMMAND...: runs one check and records its outcome
  local name="$1"; shift
  echo "==> $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); names+=("$name"); fi
}

# One optimized build for everything: tests exercise the code users run (Swift's SIMD code is
# orders of magnitude slower unoptimized), and -enable-testing allows @testable imports.
build=(-c release -Xswiftc -enable-testing)
swift build "${build[@]}" --build-tests || { echo "build failed"; echo "checks: 0 passed, 1 failed"; exit 1; }
tests=.build/release/disttrainPackageTests.xctest

step "swift test (all suites, one process)" swift test "${build[@]}" --skip-build
step "MPI suite on 2 ranks" mpirun -n 2 "$tests" --testing-library swift-testing --filter MPITests
step "MPI suite on 4 ranks" mpirun -n 4 "$tests" --testing-library swift-testing --filter MPITests
step "training jobs under mpirun (1, 2, 4 ranks), TensorBoard, PyTorch interop" bash scripts/scenarios/e2e.sh
step "variants: short run + every command" bash scripts/scenarios/variants-check.sh
step "multi-host: 2 ranks across two network namespaces" bash scripts/scenarios/multihost-test.sh
step "faults: kill -9 and resume, NaN injection, disagreeing ranks" bash scripts/scenarios/fault-tests.sh

echo
(( failed )) && printf 'failed: %s\n' "${names[@]}"
echo "checks: $passed passed, $failed failed"
(( failed == 0 ))
