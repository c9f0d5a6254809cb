#!/usr/bin/env bash
# Installs the Debian 12 packages Laconic builds, tests and benchmarks with,
# skipping the apt-get calls entirely when everything is already there.
# Needs root (as on a fresh Debian 12 machine) when something is missing.
set -euo pipefail

PKGS=(build-essential cmake pkg-config git
      libopenmpi-dev openmpi-bin libucx-dev libibverbs-dev libzstd-dev
      libcmocka-dev libgloo-dev
      clang clang-format libclang-rt-14-dev
      iproute2 procps valgrind python3 gnuplot-nox
      python3-torch python3-numpy python3-sklearn python3-pyflakes)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (or install: ${missing[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
