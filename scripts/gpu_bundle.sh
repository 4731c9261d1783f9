#!/usr/bin/env bash
# scripts/gpu_bundle.sh [BUILD_DIR] — build the CUDA tests and benchmarks and
# pack them, with the Debian libraries they need, into ONE archive for a GPU
# machine that has the CUDA toolkit and a Python with torch but none of this
# project's libraries (HDF5, Open MPI, OpenBLAS, libyaml, Criterion, libpng):
#
#   .gpu/bundle.tar.gz  ->  .gpu/bin/   cuda_probe, test_cuda_{ops,attn,train} (and test_cuda_{attn,sla2}_tc
#                                       where the build has it), bench_cuda_{attn,step,curve},
#                                       bench_perf_model (stripped)
#                           .gpu/lib/   every shared library they load, except
#                                       glibc's (libc, libm, ld-linux, libresolv, ...),
#                                       the compiler runtime (libstdc++, libgcc_s) and
#                                       CUDA's (libcuda, libcudart, libcublas*, libnccl,
#                                       libcudnn): the GPU machine has those
# The programs link only cudart of CUDA's libraries; cuBLASLt (when a device
# is initialised) and NCCL (when the multi-GPU trainer starts it) are loaded at
# run time (core/dynlib.h). This script fails if a program links either again.
#                           .gpu/MANIFEST.txt  commit, architecture, files, glibc needed
#
# Build here (no GPU needed; nvcc from /usr/local/cuda; several minutes on 2 cores):
#   scripts/gpu_bundle.sh                 # BUILD_DIR defaults to build-gpu
#   JIT_BUNDLE_ARCH=90a scripts/gpu_bundle.sh   # the one GPU architecture compiled (default 90a: H100/H200)
# Then on the GPU machine, with the device tool's `run` (it carries at most 8
# git-ignored paths, 64 MiB with the working tree):
#   carry:   [".gpu/bundle.tar.gz"]
#   command: tar xzf .gpu/bundle.tar.gz && tests/gpu/run_gpu_checks.sh
# (run_gpu_checks.sh unpacks the archive itself when .gpu/bin is missing.)
#
# Size: the archive must stay under 40 MiB (the script fails above it), so
# the working tree plus the archive fit the 64 MiB the device tool carries.
# What keeps it small: one GPU architecture (SASS only: no PTX, no sm_80),
# fat binaries compressed by nvcc (--compress-mode=size), stripped programs
# and libraries, gzip -9. The largest part is OpenBLAS
# (Debian's build carries kernels for every x86 CPU: 35 MiB, 10 MiB gzipped);
# the CPU reference side of the tests needs a fast BLAS on the GPU host.
#
# The architecture goes to CMake as -DJIT_CUDA_ARCHS=<arch>-real (SASS only).
# BUILD_DIR keeps that setting: use another folder than your normal build.
# The programs keep the RUNPATH of this machine's library folders; on the GPU
# machine LD_LIBRARY_PATH (searched first) points at .gpu/lib. .gpu/ and
# build*/ are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
arch=${JIT_BUNDLE_ARCH:-90a}
limit_mib=40
[[ $arch =~ ^[0-9]+[af]?$ ]] || { echo "gpu_bundle: JIT_BUNDLE_ARCH=$arch: use a number like 90a or 100a" >&2; exit 2; }
export PATH="/usr/local/cuda/bin:$PATH"
command -v nvcc >/dev/null || { echo "gpu_bundle: nvcc not found (install the CUDA toolkit in /usr/local/cuda)" >&2; exit 1; }

# --- configure: one architecture, SASS only (JIT_CUDA_ARCHS, a cache variable of the top level) ---
mkdir -p "$build"
grep -q 'JIT_CUDA_ARCHS' CMakeLists.txt ||
  { echo "gpu_bundle: the top-level CMakeLists.txt has no JIT_CUDA_ARCHS (this script needs a checkout that has it)" >&2; exit 1; }
# --compress-mode=size: nvcc compresses the fat binaries (the kernels with
# -lineinfo are ~1.7 MB per .cu otherwise, in each of the six programs).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DJIT_CUDA=ON -DJIT_CUDA_ARCHS="${arch}-real" \
  -DCMAKE_CUDA_FLAGS="--compress-mode=size" \
  >"$build/bundle-configure.log" || { cat "$build/bundle-configure.log" >&2; exit 1; }

# --- build only what the bundle holds ---
want=(cuda_probe test_cuda_ops test_cuda_attn test_cuda_attn_tc test_cuda_sla2_tc test_cuda_train bench_cuda_attn
  bench_cuda_step bench_cuda_curve bench_perf_model)
optional=" test_cuda_attn_tc test_cuda_sla2_tc " # the tensor-core kernels' tests, where the checkout has them
targets=$(cmake --build "$build" --target help 2>/dev/null || true)
build_list=()
for t in "${want[@]}"; do
  if grep -qE "(^|[ .])$t($|[ :])" <<<"$targets"; then build_list+=("$t")
  elif [[ $t == bench_* || $optional == *" $t "* ]]; then
    echo "gpu_bundle: warning: no target $t in this build (left out of the bundle)" >&2
  else echo "gpu_bundle: no target $t: is the CUDA backend on? (see $build/bundle-configure.log)" >&2; exit 1; fi
done
echo "gpu_bundle: building ${build_list[*]} for sm_$arch in $build"
cmake --build "$build" -j"$(nproc)" --target "${build_list[@]}"

# --- stage .gpu/{bin,lib} in a scratch directory, then archive ---
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/.gpu/bin" "$stage/.gpu/lib"
for t in "${build_list[@]}"; do
  p=$(find "$build/tests" -maxdepth 2 -type f -name "$t" -perm -u+x | head -1)
  [[ -n $p ]] || { echo "gpu_bundle: built $t but cannot find it under $build/tests" >&2; exit 1; }
  cp "$p" "$stage/.gpu/bin/"
done
# Libraries never bundled: glibc's (they must match the machine's loader) and
# the compiler runtime, and CUDA's own (the machine's match its driver).
glibc='^(linux-vdso|linux-gate|ld-linux|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libnsl|libutil|libanl|libBrokenLocale|libthread_db|libc_malloc_debug|libmemusage|libpcprofile|libSegFault|libnss_[a-z0-9_]+)\.so'
runtime='^(libgcc_s|libstdc\+\+)\.so'
device='^(libcuda|libcudart|libcublas|libcublasLt|libnccl|libcudnn[a-z_]*|libnvrtc|libnvJitLink|libnvidia-[a-z-]+)\.so'
unresolved=0
for p in "$stage"/.gpu/bin/*; do ldd "$p"; done >"$stage/ldd.txt"
while read -r name arrow path _; do
  [[ $arrow == "=>" ]] || continue
  if [[ $name =~ $glibc || $name =~ $runtime || $name =~ $device ]]; then continue; fi
  if [[ $path != /* ]]; then echo "gpu_bundle: $name is not found here" >&2; unresolved=1; continue; fi
  [[ -e $stage/.gpu/lib/$name ]] || cp -L "$path" "$stage/.gpu/lib/$name"
done <"$stage/ldd.txt"
[[ $unresolved == 0 ]] || exit 1
# Loaded at run time, never linked: a program that links them needs them to start.
linked=$(awk '$1 ~ /^lib(cublasLt|nccl)\.so/ {print $1}' "$stage/ldd.txt" | sort -u | tr '\n' ' ')
[[ -z $linked ]] || { echo "gpu_bundle: FAIL: a program links ${linked% } (they are loaded at run time: core/dynlib.h)" >&2; exit 1; }
chmod u+w "$stage"/.gpu/lib/*
strip --strip-unneeded "$stage"/.gpu/bin/* "$stage"/.gpu/lib/*

# The newest glibc symbol version anything in the bundle needs: the GPU
# machine's glibc must be at least that (run_gpu_checks.sh's first step says so).
for f in "$stage"/.gpu/bin/* "$stage"/.gpu/lib/*; do
  echo "$(objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1) $(basename "$f")"
done | sort -V >"$stage/glibc.txt"
glibc_need=$(tail -1 "$stage/glibc.txt" | cut -d' ' -f1)
glibc_who=$(awk -v v="$glibc_need" '$1 == v {print $2}' "$stage/glibc.txt" | tr '\n' ' ')
glibc_rest=$(awk -v v="$glibc_need" '$1 != v {print $1}' "$stage/glibc.txt" | tail -1)
needed_dev=$(awk '{print $1}' "$stage/ldd.txt" | grep -E "$device|$runtime" | sort -u | tr '\n' ' ')
{
  echo "bundle made by scripts/gpu_bundle.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')"
  echo "gpu_arch: sm_$arch"
  echo "nvcc: $(nvcc --version | tail -1)"
  echo "glibc_needed: ${glibc_need#GLIBC_} by ${glibc_who% }; the rest ${glibc_rest#GLIBC_} (built on $(ldd --version | head -1))"
  echo "from_the_machine: $needed_dev"
  echo "loaded_at_run_time: libcublasLt.so (by the programs that use a GPU), libnccl.so.2 (by the multi-GPU trainer only)"
  echo "files:"
  (cd "$stage" && find .gpu -type f ! -name MANIFEST.txt -printf '  %p %s\n' | sort)
} >"$stage/.gpu/MANIFEST.txt"

mkdir -p .gpu
rm -rf .gpu/bin .gpu/lib .gpu/MANIFEST.txt
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - .gpu | gzip -9 -n >.gpu/bundle.tar.gz.tmp
mv -f .gpu/bundle.tar.gz.tmp .gpu/bundle.tar.gz
bytes=$(stat -c %s .gpu/bundle.tar.gz)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
raw=$(du -sb "$stage/.gpu" | cut -f1)
echo "gpu_bundle: .gpu/bundle.tar.gz: $(find "$stage/.gpu/bin" -type f | wc -l) programs, $(find "$stage/.gpu/lib" -type f | wc -l) libraries," \
  "$(awk -v b="$raw" 'BEGIN { printf "%.1f", b / 1048576 }') MiB unpacked, $mib MiB compressed (limit $limit_mib MiB)"
echo "gpu_bundle: needs glibc >= ${glibc_need#GLIBC_} (${glibc_who% }; the rest ${glibc_rest#GLIBC_}) and from the machine: $needed_dev"
if ((bytes > limit_mib * 1048576)); then
  echo "gpu_bundle: FAIL: the archive is over $limit_mib MiB" >&2
  exit 1
fi
echo "gpu_bundle: carry .gpu/bundle.tar.gz; run: tar xzf .gpu/bundle.tar.gz && tests/gpu/run_gpu_checks.sh"
