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
# The venv is $DISTTRAIN_TB_VENV (default /tmp/disttrain-tb-venv), made with $PYTHON (default
# python3) when missing. If pip cannot reach the package index, the script prints
# "skipped: ..." and exits 77 (scripts/test.sh reports a skip, which is not a pass); every
# other failure exits 1. Every process it starts runs under a time limit.
# --self-test builds with $SWIFT_BUILD_FLAGS (default: -c release -Xswiftc -enable-testing) in
# $SCRATCH_PATH (default .build), like scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
TENSORBOARD_VERSION=2.20.0
venv=${DISTTRAIN_TB_VENV:-/tmp/disttrain-tb-venv}
python=${PYTHON:-python3}

die() { echo "tb-check: error: $*" >&2; exit 1; }

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
[[ $1 == -h || $1 == --help ]] && usage

# --- TensorBoard in a venv ------------------------------------------------------------------
if [[ ! -x $venv/bin/python ]]; then
  echo "tb-check: creating venv $venv with $($python --version 2>&1)"
  if ! out=$(timeout 120 "$python" -m venv "$venv" 2>&1); then
    rm -rf "$venv"
    die "cannot create a venv with $python: $(tail -n 3 <<<"$out" | tr '\n' ' ')
(on Debian: apt-get install python3-venv, or set PYTHON to another python3)"
  fi
fi
have=$("$venv/bin/python" -c 'import tensorboard; print(tensorboard.__version__)' 2>/dev/null)
if [[ $have != "$TENSORBOARD_VERSION" ]]; then
  echo "tb-check: installing tensorboard==$TENSORBOARD_VERSION into $venv"
  start=$SECONDS
  piplog=$(mktemp)
  # Verbose into a file: pip reports an unreachable index only at its debug level.
  if ! timeout 600 "$venv/bin/python" -m pip install --disable-pip-version-check -vvv \
         "tensorboard==$TENSORBOARD_VERSION" >"$piplog" 2>&1; then
    # Only an unreachable package index is a skip; anything else is a real failure.
    network='NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution'
    network+='|Name or service not known|Network is unreachable|No route to host|Connection refused'
    network+='|Max retries exceeded|ConnectTimeout|ReadTimeout|Read timed out|ProxyError'
    network+='|Could not fetch URL [^ ]*: connection error'
    if reason=$(grep -Eo "$network" "$piplog" | head -n 1) && [[ -n $reason ]]; then
      rm -f "$piplog"
      echo "skipped: pip install tensorboard==$TENSORBOARD_VERSION failed: package index unreachable ($reason)"
      exit 77
    fi
    grep -E '^(ERROR|WARNING)|Error' "$piplog" | tail -n 15 >&2
    rm -f "$piplog"
    die "pip install tensorboard==$TENSORBOARD_VERSION failed (not a network problem; pip's errors above)"
  fi
  rm -f "$piplog"
  echo "tb-check: installed in $((SECONDS - start))s"
fi

# --- What to check --------------------------------------------------------------------------
if [[ $1 == --self-test ]]; then
  [[ $# -eq 1 ]] || usage
  fixture=$(mktemp -d /tmp/disttrain-tb-fixture.XXXXXX)
  trap 'rm -rf "$fixture"' EXIT
  read -r -a flags <<<"${SWIFT_BUILD_FLAGS:--c release -Xswiftc -enable-testing}"
  echo "tb-check: writing the fixture with swift test --filter TensorBoardTests"
  DISTTRAIN_TB_CHECK_DIR=$fixture timeout 600 swift test "${flags[@]}" --scratch-path "${SCRATCH_PATH:-.build}" \
      --filter TensorBoardTests >"$fixture.log" 2>&1 \
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
