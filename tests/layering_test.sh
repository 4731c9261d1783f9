#!/usr/bin/env bash
# tests/layering_test.sh — the include directions the architecture promises
# (README, "Layout"): core, kernels, io and dist know nothing of train (the
# model, the trainer, the run configuration); core knows no backend's
# implementation (kernels/cpu, kernels/cuda): it calls the op table and the
# device-memory table of kernels/ops.h and core/device.h. Each violation is
# printed as FILE:LINE: the include; the test fails on any.
#   usage: tests/layering_test.sh [SOURCE_DIR]
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
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
check core -- 'kernels/(cpu|cuda)/' "core includes a backend's implementation header"
if [[ $bad == 0 ]]; then
    n=$(find core kernels io dist train -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' | wc -l)
    echo "layering: $n files, every include points down"
fi
exit $bad
