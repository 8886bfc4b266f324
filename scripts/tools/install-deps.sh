#!/usr/bin/env bash
# System packages disttrain and its tests need (Debian/Ubuntu, apt):
#   build and run:  OpenMPI, OpenBLAS, zlib, pkg-config
#   tests:          python3-torch + python3-numpy (scripts/scenarios/pytorch-interop.sh, with
#                   /usr/bin/python3), python3-venv (the TensorBoard venv of tb-check.sh, filled
#                   by pip from PyPI), iproute2 (network namespaces of multihost-test.sh)
# With these installed no check of scripts/test.sh skips (CI runs this first, see .ci/run).
# python3-torch is about 190 MB to download.
set -euo pipefail
pkgs=(libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev pkg-config
      python3 python3-torch python3-numpy python3-venv iproute2)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  echo "install-deps: apt-get install ${missing[*]}"
  timeout 600 $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 1200 $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
