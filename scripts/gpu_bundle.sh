#!/usr/bin/env bash
# scripts/gpu_bundle.sh [BUILD_DIR] — package the CUDA tests and benchmarks
# for a GPU machine that has the CUDA toolkit and Python but none of this
# project's Debian libraries (HDF5, Open MPI, OpenBLAS, libyaml, Criterion):
# builds BUILD_DIR (default build-gpu: Release, CUDA on), then copies the GPU
# test and benchmark programs into .gpu/bin and every shared library they
# need, except the C library and CUDA's own, into .gpu/lib.
#
#   scripts/gpu_bundle.sh               # here (no GPU needed)
#   # on the GPU machine, from the repository root, with .gpu carried along:
#   tests/gpu/run_gpu_checks.sh         # op tests, compute-sanitizer, benchmarks
#
# .gpu/ is git-ignored. The bundle must stay under the device tool's 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DJIT_CUDA=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
rm -rf .gpu
mkdir -p .gpu/bin .gpu/lib
progs=$(find "$build/tests" -maxdepth 2 -type f -perm -u+x \( -name 'test_cuda_*' -o -name 'bench_cuda_*' \))
[ -n "$progs" ] || { echo "gpu_bundle: no test_cuda_* or bench_cuda_* programs in $build/tests" >&2; exit 1; }
for p in $progs "$build/jit-train" "$build/jit-prep"; do cp "$p" .gpu/bin/; done
# Libraries: all that ldd resolves, minus glibc's and CUDA's (the GPU machine
# has its own, matching its driver).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libcuda\.|libcudart|libcublas|libnccl|libgcc_s|libstdc\+\+)'
for p in .gpu/bin/*; do
  ldd "$p" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  if ! [[ $name =~ $skip ]]; then cp -L "$path" .gpu/lib/; fi
done
size=$(du -sm .gpu | cut -f1)
echo "gpu_bundle: .gpu holds $(ls .gpu/bin | wc -l) programs and $(ls .gpu/lib | wc -l) libraries, ${size} MiB"
if [ "$size" -gt 60 ]; then echo "gpu_bundle: warning: over 60 MiB; the device tool carries at most 64 MiB" >&2; fi
