#!/usr/bin/env bash
# System packages disttrain needs (Debian): MPI, OpenBLAS, zlib, pkg-config.
set -euo pipefail
pkgs=(libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev pkg-config)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
