#!/usr/bin/env bash
# System packages disttrain and its tests need (Debian/Ubuntu, apt):
#   build and run:  OpenMPI, OpenBLAS, zlib, pkg-config
#   tests:          python3-torch + python3-numpy (scripts/scenarios/pytorch-interop.sh, with
#                   /usr/bin/python3), python3-venv (the TensorBoard venv of tb-check.sh, filled
#                   by pip from PyPI), iproute2 (network namespaces of multihost-test.sh),
#                   strace (fault injection of kill-at-rename-test.sh)
# With these installed no check of scripts/test.sh skips (CI runs this first, see .ci/run).
# python3-torch is about 190 MB to download.
set -euo pipefail
install() {  # install [APT-GET OPTIONS...] -- PACKAGES...: the packages not installed yet
  local opts=() missing=() p
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done; shift
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  (( ${#missing[@]} )) || return 0
  echo "install-deps: apt-get install ${missing[*]}"
  if [[ -z ${updated:-} ]]; then timeout 600 $sudo apt-get update -qq; updated=1; fi
  DEBIAN_FRONTEND=noninteractive timeout 1200 $sudo apt-get install -y -qq "${opts[@]}" "${missing[@]}"
}
sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
install -- libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev pkg-config
# The test-only packages without their recommendations (python3-torch's would add hundreds of MB).
install --no-install-recommends -- python3 python3-torch python3-numpy python3-venv iproute2 strace
