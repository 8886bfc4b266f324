#!/usr/bin/env bash
# Checks disttrain's TensorBoard event files with TensorBoard itself (pip package, in a venv).
#
#   scripts/scenarios/tb-check.sh RUN_DIR [EXPECTED.json]   a run directory (reads RUN_DIR/tb) or a log dir
#   scripts/scenarios/tb-check.sh --self-test               writes a known fixture with the Swift test
#                                                 TensorBoardTests, then checks it exactly
#
# Without EXPECTED.json every tag the trainer writes must be there at least once (see
# scripts/tools/tb_read.py for the format and the checks). A run directory's loss/test values are
# also compared with its metrics.jsonl.
#
# The venv is scripts/tools/python-venv.sh's ($DISTTRAIN_TB_VENV, default /tmp/disttrain-tb-venv,
# made with $PYTHON, default python3). If pip cannot reach the package index, the script prints
# "skipped: ..." and exits 77 (scripts/test.sh reports a skip, which is not a pass); every
# other failure exits 1. Every process it starts runs under a time limit.
# --self-test builds with $SWIFT_BUILD_FLAGS (default: -c release -Xswiftc -enable-testing) in
# $SCRATCH_PATH (default .build), like scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
venv=${DISTTRAIN_TB_VENV:-/tmp/disttrain-tb-venv}

die() { echo "tb-check: error: $*" >&2; exit 1; }

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
[[ $1 == -h || $1 == --help ]] && usage

# --- TensorBoard in a venv ------------------------------------------------------------------
timeout 900 bash scripts/tools/python-venv.sh >"${TMPDIR:-/tmp}/tb-check-venv.$$" 2>&1
status=$?
out=$(cat "${TMPDIR:-/tmp}/tb-check-venv.$$"); rm -f "${TMPDIR:-/tmp}/tb-check-venv.$$"
(( status == 77 )) && { grep '^skipped:' <<<"$out"; exit 77; }
(( status == 0 )) || { echo "$out" >&2; die "scripts/tools/python-venv.sh failed (exit $status)"; }
grep -v "^$venv/bin/python\$" <<<"$out" | sed 's/^python-venv/tb-check/'

# --- What to check --------------------------------------------------------------------------
if [[ $1 == --self-test ]]; then
  [[ $# -eq 1 ]] || usage
  fixture=$(mktemp -d /tmp/disttrain-tb-fixture.XXXXXX)
  trap 'rm -rf "$fixture"' EXIT
  read -r -a flags <<<"${SWIFT_BUILD_FLAGS:--c release -Xswiftc -enable-testing}"
  echo "tb-check: writing the fixture with swift test --filter TensorBoardTests"
  # swift build --build-tests with scripts/test.sh's flags is a no-op after its build; plain
  # `swift test` would rebuild everything with other flags.
  { timeout 1200 swift build "${flags[@]}" --scratch-path "${SCRATCH_PATH:-.build}" --build-tests &&
    DISTTRAIN_TB_CHECK_DIR=$fixture timeout 600 swift test "${flags[@]}" --scratch-path "${SCRATCH_PATH:-.build}" \
      --skip-build --filter TensorBoardTests; } >"$fixture.log" 2>&1 \
    || { tail -n 30 "$fixture.log" >&2; rm -f "$fixture.log"; die "swift test --filter TensorBoardTests failed"; }
  rm -f "$fixture.log"
  [[ -f $fixture/expected.json ]] || die "the Swift tests wrote no fixture into $fixture"
  exec_args=("$fixture" "$fixture/expected.json")
else
  dir=$1
  [[ -d $dir ]] || die "$dir: no such directory"
  logdir=$dir
  [[ -d $dir/tb ]] && logdir=$dir/tb
  exec_args=("$logdir")
  [[ $# -eq 2 ]] && exec_args+=("$2")
  [[ -f $dir/metrics.jsonl ]] && exec_args+=(--metrics "$dir/metrics.jsonl")
fi

# TensorBoard logs its purge notices and the missing-TensorFlow notice on stderr; keep them
# out of the way unless the check fails.
errlog=$(mktemp)
timeout 120 "$venv/bin/python" scripts/tools/tb_read.py "${exec_args[@]}" 2>"$errlog"
status=$?
(( status != 0 )) && cat "$errlog" >&2
rm -f "$errlog"
exit $status
