#!/usr/bin/env bash
# scripts/setup.sh — install every Debian package the build, the demo and the
# tests need. Idempotent: when everything is installed it only checks (about
# a second) and touches nothing. Needs root or sudo for the install.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
  libyaml-dev libcriterion-dev
  libopenblas-dev libopenblas-openmp-dev
  libpng-dev zlib1g-dev
  python3 python3-torch python3-h5py python3-numpy
  dataset-fashion-mnist valgrind
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
