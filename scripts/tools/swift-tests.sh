#!/usr/bin/env bash
# Every Swift test suite in one process: `swift test --skip-build` with scripts/test.sh's build
# flags (build first). A test that skipped itself (swift-testing's .enabled(if:), e.g. the
# safetensors check without the package) makes this exit 77 after a "skipped: ..." line: a skip
# is not a pass. DISTTRAIN_PYTHON names a python3 with the safetensors package
# (scripts/tools/python-venv.sh's venv).
set -uo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift test -c release -Xswiftc -enable-testing --skip-build 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
(( status == 0 )) || exit "$status"
if grep -q '^.\{0,12\}Test .* skipped' "$log"; then
  echo "skipped: Swift tests that skipped themselves: $(grep -o 'Test [^ ]* skipped' "$log" | cut -d' ' -f2 | tr '\n' ' ')"
  exit 77
fi
