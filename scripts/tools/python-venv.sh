#!/usr/bin/env bash
# The Python venv the checks use for packages Debian does not ship: TensorBoard (its own event
# file reader, scripts/scenarios/tb-check.sh) and safetensors (SafeTensorsTests loads
# disttrain's files with the reference implementation). Installed by pip from PyPI.
#
#   bash scripts/tools/python-venv.sh      # prints the venv's python on the last line
#
# The venv is $DISTTRAIN_TB_VENV (default /tmp/disttrain-tb-venv), made with $PYTHON (default
# python3) when missing. If pip cannot reach the package index it prints "skipped: ..." and
# exits 77 (scripts/test.sh reports a skip, which is not a pass); other failures exit 1.
set -uo pipefail
TENSORBOARD_VERSION=2.20.0
SAFETENSORS_VERSION=0.4.5
venv=${DISTTRAIN_TB_VENV:-/tmp/disttrain-tb-venv}
python=${PYTHON:-python3}
die() { echo "python-venv: error: $*" >&2; exit 1; }

if [[ ! -x $venv/bin/python ]]; then
  echo "python-venv: creating venv $venv with $($python --version 2>&1)"
  if ! out=$(timeout 120 "$python" -m venv "$venv" 2>&1); then
    rm -rf "$venv"
    die "cannot create a venv with $python: $(tail -n 3 <<<"$out" | tr '\n' ' ')
(on Debian: apt-get install python3-venv, or set PYTHON to another python3)"
  fi
fi
have=$(timeout 60 "$venv/bin/python" -c 'import tensorboard, safetensors, numpy; print(tensorboard.__version__, safetensors.__version__)' 2>/dev/null)
if [[ $have != "$TENSORBOARD_VERSION $SAFETENSORS_VERSION" ]]; then
  want=("tensorboard==$TENSORBOARD_VERSION" "safetensors==$SAFETENSORS_VERSION" numpy)
  echo "python-venv: installing ${want[*]} into $venv"
  start=$SECONDS
  piplog=$(mktemp)
  # Verbose into a file: pip reports an unreachable index only at its debug level.
  if ! timeout 600 "$venv/bin/python" -m pip install --disable-pip-version-check -vvv "${want[@]}" >"$piplog" 2>&1; then
    # Only an unreachable package index is a skip; anything else is a real failure.
    network='NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution'
    network+='|Name or service not known|Network is unreachable|No route to host|Connection refused'
    network+='|Max retries exceeded|ConnectTimeout|ReadTimeout|Read timed out|ProxyError'
    network+='|Could not fetch URL [^ ]*: connection error'
    if reason=$(grep -Eo "$network" "$piplog" | head -n 1) && [[ -n $reason ]]; then
      rm -f "$piplog"
      echo "skipped: pip install ${want[*]} failed: package index unreachable ($reason)"
      exit 77
    fi
    grep -E '^(ERROR|WARNING)|Error' "$piplog" | tail -n 15 >&2
    rm -f "$piplog"
    die "pip install ${want[*]} failed (not a network problem; pip's errors above)"
  fi
  rm -f "$piplog"
  echo "python-venv: installed in $((SECONDS - start))s"
fi
echo "$venv/bin/python"
