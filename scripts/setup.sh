#!/usr/bin/env bash
# scripts/setup.sh [demo] — install the Debian packages the build, the demo
# and the tests need; with `demo`, only those the build and the demo need
# (no PyTorch, h5py or valgrind: the tests' references and checkers).
# Idempotent: when everything is installed it only checks (about a second)
# and touches nothing. Needs root or sudo for the install.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
  libyaml-dev libcriterion-dev
  libopenblas-dev libopenblas-openmp-dev
  libpng-dev libjpeg-dev zlib1g-dev
  dataset-fashion-mnist
)
if [ "${1:-all}" != demo ]; then
  packages+=(git hdf5-tools python3 python3-torch python3-torchvision python3-h5py python3-numpy python3-yaml python3-pil valgrind)
fi

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
