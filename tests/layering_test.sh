#!/usr/bin/env bash
# tests/layering_test.sh — the directions the architecture promises (README,
# "Layout"), in the sources and in the built libraries:
# - includes: core, kernels, io and dist know nothing of train (the model,
#   the trainer, the run configuration); core, io and dist include nothing
#   of kernels/ (the interfaces the backends implement, core/backend.h and
#   core/op_table.h with its list core/op_list.h, are in core, and the
#   backends include them from below); `#ifdef JIT_HAVE_CUDA` appears in the
#   backend registry (kernels/backends.c) and nowhere else outside
#   kernels/cuda;
# - devices: no DEVICE_CPU / DEVICE_CUDA test above the kernels and dist
#   layers (io, train): what differs between devices is behind the Backend
#   (core/backend.h) and the gradient reduction (dist/grad_reduce.h), so the
#   trainer makes the same calls on every device;
# - links (with BUILD_DIR): each layer's archive (CMakeLists.txt) uses
#   symbols of the layers below it only: core none, kernels and dist core,
#   io dist and core, train all four.
# Each violation is printed (FILE:LINE: the include, or the archive and the
# symbol); the test fails on any.
#   usage: tests/layering_test.sh [SOURCE_DIR [BUILD_DIR]]
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=${2:-}
[[ -z $build || $build == /* ]] || build=$PWD/$build
cd "$root" || exit 1
bad=0
# check DIRS... -- PATTERN MESSAGE
check() {
    local dirs=() pattern msg hits
    while [[ $1 != -- ]]; do dirs+=("$1"); shift; done
    pattern=$2 msg=$3
    hits=$(grep -rnE --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh' \
        "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"$pattern" "${dirs[@]}")
    if [[ -n $hits ]]; then
        echo "layering: $msg:"
        echo "$hits" | sed 's/^/  /'
        bad=1
    fi
}
check core kernels io dist -- 'train/' "a lower layer includes a header of train/"
check core io dist -- 'kernels/' "a layer below kernels includes a header of kernels/"
ifdefs=$(grep -rlE --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh' \
    '^[[:space:]]*#[[:space:]]*if(def)?[[:space:]].*JIT_HAVE_CUDA' core kernels io dist train |
    grep -vE '^kernels/(backends\.c|cuda/)')
if [[ -n $ifdefs ]]; then
    echo "layering: #ifdef JIT_HAVE_CUDA outside the registry (kernels/backends.c) and kernels/cuda:"
    echo "$ifdefs" | sed 's/^/  /'
    bad=1
fi
devtests=$(grep -rnwE --include='*.c' --include='*.h' 'DEVICE_(CPU|CUDA)' io train)
if [[ -n $devtests ]]; then
    echo "layering: a device test above the kernels and dist layers (use the Backend or dist/grad_reduce.h):"
    echo "$devtests" | sed 's/^/  /'
    bad=1
fi
if [[ $bad == 0 ]]; then
    n=$(find core kernels io dist train -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' | wc -l)
    echo "layering: $n files, every include points down, no device test in io or train"
fi

# The archives: what each layer leaves undefined must not be defined by a
# layer it may not use.
if [[ -n $build ]]; then
    declare -A below=([core]="" [kernels]="core" [dist]="core" [io]="dist core" [train]="io dist kernels core")
    layers=(core kernels dist io train)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    for l in "${layers[@]}"; do
        a=$build/libjit_$l.a
        [[ -f $a ]] || { echo "layering: $a not found (build first)"; exit 1; }
        nm -g --defined-only "$a" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u >"$work/$l.def"
        nm -u "$a" 2>/dev/null | awk '$1 == "U" {print $2}' | sort -u | comm -23 - "$work/$l.def" >"$work/$l.undef"
    done
    for l in "${layers[@]}"; do
        for m in "${layers[@]}"; do
            [[ $m == "$l" || " ${below[$l]} " == *" $m "* ]] && continue
            hits=$(comm -12 "$work/$l.undef" "$work/$m.def")
            if [[ -n $hits ]]; then
                echo "layering: libjit_$l.a uses symbols of libjit_$m.a, a layer it may not use:"
                echo "$hits" | head -20 | sed 's/^/  /'
                bad=1
            fi
        done
    done
    [[ $bad == 0 ]] && echo "layering: ${#layers[@]} archives in $build, every link points down"
fi
exit $bad
