#!/usr/bin/env bash
# tests/gpu/run_gpu_checks.sh [--dry-run] [--all] [--budget SECONDS] [--out DIR] [--bin DIR]
#
# The CUDA backend's checks on a GPU machine, as ONE command that fits the
# device tool: at most 10 minutes a command, 15 minutes of device time a
# session (this script keeps to --budget, default 360 s, so a lease leaves
# time to rerun; every step under `timeout` with its own cap), at most 8
# files brought back from $OUT (this script writes 3), 64 MiB carried.
#
# Here (no GPU): build the bundle once, then hand the device tool
#   carry:   [".gpu/bundle.tar.gz"]            (scripts/gpu_bundle.sh makes it; < 40 MiB)
#   command: tar xzf .gpu/bundle.tar.gz && tests/gpu/run_gpu_checks.sh
# (the script also unpacks .gpu/bundle.tar.gz itself when .gpu/bin is missing).
#
# Steps, in this order (cap in seconds; a step starts only with enough of the
# budget left, else it is reported skipped):
#   a0 probe    cuda_probe: the driver's and the runtime's CUDA versions, then
#               the devices. A driver older than the runtime (or none, or no
#               device) FAILS here, loudly with both numbers, and every later
#               step is reported skipped for that reason (not "no GPU")    20
#   a  env      nvidia-smi, nvcc, glibc, compute-sanitizer, torch; every
#               program's libraries resolved with the composed library path
#               (missing ones are named: MISSING lines in a.log)         40
#   b1 ops      test_cuda_ops  (Criterion, --jobs 1, JIT_CUDA_SYNC=1: a sync
#               after every launch, so a fault names its kernel)          80
#   b2 attn     test_cuda_attn (the same)                                 80
#   b3 tc       test_cuda_attn_tc: the tensor-core attention kernels
#               against the CPU (the same; skipped while the bundle has no
#               such program)                                             60
#   b4 sla2-tc  test_cuda_sla2_tc with SLA2_TC_FULL=1: SLA2 in BF16 mode
#               (sparse branch block-sparse on the tensor-core kernels)
#               against the CPU over the whole (d, N, top-k) grid (the
#               same; skipped while the bundle has no such program)      60
#   c1 attn-bench  bench_cuda_attn --prec bf16: flash attention (the
#               tensor-core kernels where BF16 mode uses them) and SLA2
#               (top-k 0.15, blocks 64 and 32: the tensor-core block-sparse
#               kernels) at N = 256 ... 16384, d = 64                     60
#   c2 sdpa     bench_sdpa.py --dtype bf16: PyTorch SDPA (flash), same sizes 45
#   c3 model    bench_perf_model --measure --batch 64: the stated performance
#               model's predictions with the attention op and the block's
#               linear layers measured beside them                       45
#   d  step     bench_cuda_step: JiT-B/16 trainer step, batch 64, bf16,
#               full attention and SLA2 top-k 0.15, images/s              80
#   c4 torch    bench_step_torch.py: the same JiT-B/16 step (batch 64, bf16
#               autocast, fused AdamW) under torch.compile with SDPA: the
#               anchor for d (its compilation runs in the warm-up)       120
# With --all (default budget then 540 s), also:
#   e  train    test_cuda_train (GPU trainer = CPU trainer), JIT_CUDA_SYNC=1 120
#   f1 memcheck compute-sanitizer memcheck on a few op and attention tests 60
#   f2 racecheck compute-sanitizer racecheck on fewer                     60
#               (both skipped with a note when the tool refuses the device,
#               e.g. 'Device not supported' under gVisor)
#   g  curve    bench_cuda_curve --steps 200: bf16 loss curve vs the CPU 120
#
# Programs run with LD_LIBRARY_PATH = .gpu/lib, the toolkit's libraries
# (/usr/local/cuda/lib64, targets/x86_64-linux/lib), the Python environment's
# nvidia/*/lib (NCCL, cuBLAS, cudart wheels) and the caller's path, set per
# program (`env LD_LIBRARY_PATH=... prog`): python3 (SDPA) never sees it.
#
# Output in OUT (--out, else $OUT, else out/gpu-checks; a temporary folder in
# a dry run): gpu-logs.tar.gz (one log per step, summary.txt, bench.txt),
# summary.txt and bench.txt (the benchmark lines and the attention table),
# rewritten after every step, so a run cut short still brings back what it
# did. The last thing printed is the summary table: step, result
# (ok/FAIL/timeout/skipped), seconds, key figure. Exit status: the number of
# steps that failed or timed out (0 = all passed or skipped). --bin DIR runs
# the programs of DIR instead of .gpu/bin (tests/gpu/probe_test.sh).
#
# --dry-run (no GPU needed; ctest label gpu_dryrun): the same run, where every
# step goes through the runner (limits, timeout, log, archive) with `true` in
# place of its program, except the library check when a bundle is unpacked;
# then a self-test of the runner (ok/FAIL/skipped/timeout classification),
# the figure parsers (on canned output), the sanitizer filters (each named
# test exists) and the output (archive contents, at most 8 files). Exit 0
# when the script is sound. Takes a few seconds.
set -uo pipefail
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/../.." && pwd)
cd "$root" || exit 2

# Criterion filters of the sanitizer runs (the dry run checks every name exists).
SAN_OPS_MEMCHECK='*/+(linear_bf16|rmsnorm|rope|qkv_split|adamw_matches_cpu)'
SAN_ATTN_MEMCHECK='cuda_attn/+(attention_fp32_n53_hd32|attention_bf16|sla2_hard_softmax|sla2_bf16)'
SAN_OPS_RACECHECK='*/+(rmsnorm|linear_bf16)'
SAN_ATTN_RACECHECK='cuda_attn/+(attention_fp32_n53_hd32|sla2_hard_softmax)'
# compute-sanitizer's own lines start with '========='; gVisor's refusal reads 'Device not supported'.
UNSUPPORTED_RE='^=+ .*(not supported|[Uu]nsupported)|[Dd]evice not supported'

# ---------------------------------------------------------------- internal
# `run_gpu_checks.sh --internal WHAT ...`: the steps that are more than one
# program, run by the script itself under the step's timeout. They read the
# JIT_GPU_* variables main exports.
if [[ ${1:-} == --internal ]]; then
  what=${2:-}
  shift 2
  case $what in
    env) # a: the machine and the libraries
      dry=${JIT_GPU_DRY:-0}
      echo "== machine: $(uname -srm), $(nproc) CPUs"
      echo "== glibc: $(ldd --version 2>&1 | head -1)"
      if [[ -f .gpu/MANIFEST.txt ]]; then sed -n '1,6p' .gpu/MANIFEST.txt | sed 's/^/== bundle: /'; fi
      if ((dry)); then echo "== dry run: nvidia-smi, nvcc, torch not queried"
      else
        echo "== nvidia-smi:"
        if command -v nvidia-smi >/dev/null; then
          nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader |
            sed 's/^/GPU: /'
          nvidia-smi | head -15
        else echo "GPU: none (nvidia-smi not found)"; fi
        nvidia-smi -L >/dev/null 2>&1 || { echo "NO-GPU: nvidia-smi finds no GPU"; nogpu=1; }
        echo "== nvcc: $(nvcc --version 2>&1 | tail -2 | tr '\n' ' ')"
        echo "== compute-sanitizer: ${JIT_GPU_SAN:-not found} $([[ -n ${JIT_GPU_SAN:-} ]] && "$JIT_GPU_SAN" --version 2>&1 | tail -1)"
        for py in $JIT_GPU_PYS; do
          echo "== python $py: $(timeout 60 "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)"
        done
      fi
      echo "== library path of the programs:"
      tr ':' '\n' <<<"$JIT_GPU_LD" | sed '/^$/d; s/^/   /'
      cuda1=$(ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" {print $NF; exit}')
      if [[ -z $cuda1 ]]; then
        for d in $(tr ':' ' ' <<<"$JIT_GPU_LD"); do [[ -e $d/libcuda.so.1 ]] && { cuda1=$d/libcuda.so.1; break; }; done
      fi
      echo "== libcuda.so.1 (the driver, loaded by cudart): ${cuda1:-not found by ldconfig or on the path}"
      # loaded at run time (core/dynlib.h), so ldd below does not list them
      for lib in 'libcublasLt.so.[0-9]*' 'libnccl.so.2'; do
        found=$(ldconfig -p 2>/dev/null | awk -v p="^${lib//\*/.*}\$" '$1 ~ p {print $NF; exit}')
        if [[ -z $found ]]; then
          for d in $(tr ':' ' ' <<<"$JIT_GPU_LD"); do
            for f in "$d"/$lib; do [[ -e $f ]] && { found=$f; break 2; }; done
          done
        fi
        echo "== $lib (loaded at run time): ${found:-not found}"
        [[ -z $found && $lib == libcublasLt* ]] && { echo "MISSING (dlopen): $lib => not found (every GPU program needs it)"; dl_bad=1; }
      done
      shopt -s nullglob
      progs=("$JIT_GPU_BIN"/*)
      if ((${#progs[@]} == 0)); then echo "== no programs in $JIT_GPU_BIN: library check not done"; exit 77; fi
      bad=0
      for p in "${progs[@]}"; do
        out=$(env LD_LIBRARY_PATH="$JIT_GPU_LD" ldd "$p" 2>&1)
        echo "== $(basename "$p"): libraries from outside the bundle:"
        grep '=>' <<<"$out" | grep -v "$root/.gpu/lib/" | sed 's/ (0x[0-9a-f]*)//; s/^[[:space:]]*/   /'
        while read -r line; do
          echo "MISSING ($(basename "$p")): $line"
          bad=1
        done < <(grep -E 'not found|No such file' <<<"$out" | sed 's/^[[:space:]]*//')
      done
      ((${dl_bad:-0})) && bad=1
      ((bad == 0)) && echo "== libraries: every program resolves all of its libraries"
      ((bad == 0 && ${nogpu:-0} == 1)) && exit 3
      exit $bad ;;
    sdpa) # c2: PyTorch SDPA with the first Python that has torch (77 from all: none)
      for py in $JIT_GPU_PYS; do
        echo "== $py tests/bench/bench_sdpa.py $*"
        "$py" tests/bench/bench_sdpa.py "$@"
        rc=$?
        [[ $rc == 77 ]] || exit $rc
      done
      exit 77 ;;
    torchstep) # c4: the JiT step in PyTorch with the first Python that has torch (77 from all: none)
      for py in $JIT_GPU_PYS; do
        echo "== $py tests/bench/bench_step_torch.py $*"
        PYTHONUNBUFFERED=1 "$py" tests/bench/bench_step_torch.py "$@"
        rc=$?
        [[ $rc == 77 ]] || exit $rc
      done
      exit 77 ;;
    sanitize) # f1/f2: compute-sanitizer TOOL on a subset of the op and attention tests
      tool=$1
      [[ -n ${JIT_GPU_SAN:-} ]] || { echo "compute-sanitizer not found: $tool skipped"; exit 77; }
      if [[ $tool == memcheck ]]; then filters=("$SAN_OPS_MEMCHECK" "$SAN_ATTN_MEMCHECK")
      else filters=("$SAN_OPS_RACECHECK" "$SAN_ATTN_RACECHECK"); fi
      rc=0
      i=0
      for prog in test_cuda_ops test_cuda_attn; do
        echo "== compute-sanitizer --tool $tool $prog --filter '${filters[$i]}'"
        "$JIT_GPU_SAN" --tool "$tool" --target-processes all --require-cuda-init no --error-exitcode 86 --print-limit 50 \
          env LD_LIBRARY_PATH="$JIT_GPU_LD" JIT_CUDA_SYNC=1 "$JIT_GPU_BIN/$prog" --jobs 1 --verbose \
          --filter "${filters[$i]}" 2>&1 | tee "$JIT_GPU_WORK/san.tmp"
        r=${PIPESTATUS[0]}
        if grep -qE "$UNSUPPORTED_RE" "$JIT_GPU_WORK/san.tmp"; then
          echo "SANITIZER-UNSUPPORTED: compute-sanitizer refused the device (above)"
          exit 77
        fi
        ((r != 0)) && rc=$r
        i=$((i + 1))
      done
      exit "$rc" ;;
    *) echo "run_gpu_checks: unknown internal step '$what'" >&2; exit 2 ;;
  esac
fi

# ---------------------------------------------------------------- options
dry=0
all=0
budget=${JIT_GPU_BUDGET:-}
out=${OUT:-}
bin_arg=""
while (($#)); do
  case $1 in
    --dry-run) dry=1 ;;
    --all) all=1 ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --bin) bin_arg=${2:?--bin needs a folder}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_gpu_checks: unknown argument '$1' (use --dry-run, --all, --budget S, --out DIR, --bin DIR)" >&2; exit 2 ;;
  esac
  shift
done
# About 6 minutes by default: a 15-minute lease (its start included) then
# leaves time to rerun; --all adds the optional steps and 3 more minutes.
[[ -n $budget ]] || budget=$( ((all)) && echo 540 || echo 360)
[[ $budget =~ ^[0-9]+$ ]] || { echo "run_gpu_checks: --budget $budget: seconds, please" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-checks.XXXXXX")
tmp_out=0
if [[ -z $out ]]; then
  if ((dry)); then out=$work/out; tmp_out=1; else out=out/gpu-checks; fi
fi
mkdir -p "$out" "$work/gpu-logs" || exit 2
out=$(cd "$out" && pwd)
logs=$work/gpu-logs
# shellcheck disable=SC2317 # (the traps call these)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
t_start=$SECONDS
deadline=$((t_start + budget))
reserve=10 # kept back for the summary and the archive

# ---------------------------------------------------------------- environment
export PATH="$PATH:/usr/local/cuda/bin"
bin=$root/.gpu/bin
[[ -n $bin_arg ]] && bin=$(cd "$bin_arg" && pwd)
if ((!dry)) && [[ -z $bin_arg && -f .gpu/bundle.tar.gz ]] && { [[ ! -d $bin ]] || [[ .gpu/bundle.tar.gz -nt .gpu/MANIFEST.txt ]]; }; then
  echo "run_gpu_checks: unpacking .gpu/bundle.tar.gz"
  tar xzf .gpu/bundle.tar.gz || { echo "run_gpu_checks: cannot unpack .gpu/bundle.tar.gz" >&2; exit 2; }
  touch .gpu/MANIFEST.txt
fi
# Pythons to try, in order (the SDPA step takes the first with torch).
pys=""
for p in ${JIT_PYTHON:-} /opt/torch/.venv/bin/python3 "$(command -v python3 || true)"; do
  [[ -n $p && -x $p && " $pys " != *" $p "* ]] && pys="$pys $p"
done
# The library path: bundle, toolkit, the Python environment's nvidia/*/lib, the caller's.
ld=$root/.gpu/lib
seen_dirs=" "
for d in ${CUDA_HOME:+$CUDA_HOME/lib64} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib; do
  r=$(readlink -f "$d" 2>/dev/null) || continue
  [[ -d $r && $seen_dirs != *" $r "* ]] && { ld=$ld:$d; seen_dirs="$seen_dirs$r "; }
done
for p in $pys; do
  while read -r nv; do
    for d in "$nv"/*/lib; do [[ -d $d && ":$ld:" != *":$d:"* ]] && ld=$ld:$d; done
  done < <(timeout 20 "$p" -c 'import nvidia; print("\n".join(nvidia.__path__))' 2>/dev/null)
done
ld=$ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
san=""
for s in "$(command -v compute-sanitizer || true)" /usr/local/cuda/bin/compute-sanitizer \
  /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [[ -n $s && -x $s ]] && { san=$s; break; }
done
export JIT_GPU_LD=$ld JIT_GPU_BIN=$bin JIT_GPU_SAN=$san JIT_GPU_PYS=$pys JIT_GPU_DRY=$dry JIT_GPU_WORK=$work

# ---------------------------------------------------------------- figures
# fig_* LOG RC: one line "RESULT|FIGURE"; RESULT empty = the exit status decides.
strip_log() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
skip_reason() { grep -v -E '^(#|==)' "$1" | sed '/^[[:space:]]*$/d' | tail -1; } # a program's last words
fig_criterion() {
  local log=$1 rc=$2 syn tested pass fail crash names last
  syn=$(strip_log "$log" | grep 'Synthesis: Tested:' | tail -1)
  if [[ -n $syn ]]; then
    read -r tested pass fail crash < <(sed -E 's/.*Tested: ([0-9]+) \| Passing: ([0-9]+) \| Failing: ([0-9]+) \| Crashing: ([0-9]+).*/\1 \2 \3 \4/' <<<"$syn")
    names=$(strip_log "$log" | sed -n -E 's/^\[FAIL\] ([^:]+::[^:]+):.*/\1/p' | head -4 | tr '\n' ' ')
    if ((tested == 0)); then echo "FAIL|no test ran (filter matches nothing?)"
    elif ((fail + crash > 0)); then echo "|$pass/$tested passed; failed: ${names% }"
    else echo "|$pass/$tested passed"; fi
  elif [[ $rc == 77 ]]; then echo "|$(skip_reason "$log")"
  else
    last=$(strip_log "$log" | sed -n -E 's/^\[RUN \] (.*)/\1/p' | tail -1)
    echo "|no synthesis (exit $rc)${last:+; last test started: $last}"
  fi
}
fig_env() {
  local log=$1 rc=$2 gpu miss
  gpu=$(sed -n 's/^GPU: //p' "$log" | head -1 | awk -F', *' '{print $1 (NF > 1 ? ", driver " $2 : "")}')
  miss=$(sed -n -E 's/^MISSING \([^)]*\): ([^ ]+).*/\1/p' "$log" | sort -u | tr '\n' ' ')
  if [[ -n $miss ]] && ((dry)); then echo "skipped|dry run: missing here: ${miss% } (the GPU machine may have them)"
  elif [[ -n $miss ]]; then echo "|${gpu:+$gpu; }missing: ${miss% }"
  elif grep -q '^NO-GPU' "$log"; then echo "FAIL|no GPU (nvidia-smi finds none)"
  elif [[ $rc == 77 ]]; then echo "|${gpu:+$gpu; }no bundle unpacked: libraries not checked"
  elif [[ $rc == 0 ]]; then echo "|${gpu:+$gpu; }libraries ok"
  else echo "|${gpu:+$gpu; }exit $rc"; fi
}
kv() { sed -n -E "s/.*[ ]$2=([^ ]+).*/\1/p" <<<"$1"; } # kv LINE KEY
fig_attn() {
  local log=$1 rc=$2 line n tf sl
  [[ $rc == 77 ]] && { echo "|$(skip_reason "$log")"; return; }
  line=$(grep '^attn ' "$log" | tail -1)
  [[ -n $line ]] || { echo "|no attn line (exit $rc)"; return; }
  n=$(kv "$line" N)
  tf=$(kv "$line" total_tflops)
  sl=$(grep "^sla2 N=$n " "$log" | tail -1)
  echo "|N=$n flash $tf TFLOP/s fwd+bwd${sl:+, SLA2 x$(kv "$sl" vs_full) faster}"
}
fig_sdpa() { # compares with c1's log, given as $3
  local log=$1 rc=$2 ours=${3:-} fig="" n s o
  for n in 4096 16384; do
    s=$(grep "^sdpa N=$n " "$log" | tail -1)
    [[ -n $s ]] || continue
    o=$([[ -f $ours ]] && grep "^attn N=$n " "$ours" | tail -1)
    fig+="${fig:+; }N=$n ${o:+flash $(kv "$o" total_tflops) vs }SDPA $(kv "$s" total_tflops) TFLOP/s"
  done
  [[ -n $fig ]] || fig="no sdpa line (exit $rc)"
  [[ $rc == 77 ]] && fig=$(skip_reason "$log")
  echo "|$fig"
}
fig_step() {
  local log=$1 rc=$2 fig="" line
  [[ $rc == 77 ]] && { echo "|$(skip_reason "$log")"; return; }
  while read -r line; do
    fig+="${fig:+, }$(kv "$line" attn) $(kv "$line" img_per_s) img/s ($(kv "$line" ms_median) ms)"
  done < <(grep '^train_step ' "$log")
  line=$(grep '^train_step ' "$log" | head -1)
  [[ -n $fig ]] && fig="$(kv "$line" model) $(kv "$line" prec) bs$(kv "$line" batch): $fig"
  echo "|${fig:-no train_step line (exit $rc)}"
}
fig_curve() {
  local log=$1 rc=$2 line
  line=$(grep '^curve_gap ' "$log" | tail -1)
  if [[ -z $line ]] && grep -q 'no CUDA device' "$log"; then echo "skipped|$(skip_reason "$log")"; return; fi
  if [[ -z $line ]]; then echo "|no curve_gap line (exit $rc)"; return; fi
  echo "|mean20 gap bf16 vs cpu $(kv "$line" max_mean20_abs) (rel $(kv "$line" max_mean20_rel)); $(grep '^seconds per step' "$log" | sed 's/seconds per step: //')"
}
fig_probe() {
  local log=$1 rc=$2 line d r dev
  line=$(grep '^cuda_probe driver=' "$log" | tail -1)
  d=$(kv " $line" driver); r=$(kv " $line" runtime)
  ver() { [[ $1 =~ ^[0-9]+$ ]] && echo "CUDA $(($1 / 1000)).$(($1 % 1000 / 10))" || echo "?"; }
  dev=$(sed -n -E 's/^cuda_probe device=0 name="([^"]*)".*/\1/p' "$log" | head -1)
  case $rc in
    0) echo "|driver $(ver "$d"), runtime $(ver "$r")${dev:+; $dev}" ;;
    3) echo "FAIL|driver $(ver "$d") ($d) is older than the runtime $(ver "$r") ($r): nothing can run" ;;
    4) echo "FAIL|no CUDA driver (libcuda.so.1), runtime $(ver "$r")" ;;
    5) echo "FAIL|driver $(ver "$d"), runtime $(ver "$r"), but no usable device: $(grep -o 'no usable CUDA device: .*' "$log" | head -1 | cut -c25-)" ;;
    *) echo "FAIL|cuda_probe exit $rc${line:+ ($line)}" ;;
  esac
}
fig_model() {
  local log=$1 rc=$2 p m l
  [[ $rc == 77 ]] && { echo "|$(skip_reason "$log")"; return; }
  p=$(grep '^pm_step .* attn=simt ' "$log" | tail -1)
  m=$(grep '^pm_attn N=4096 ' "$log" | tail -1)
  l=$(grep '^pm_linear role=mlp.w12 ' "$log" | tail -1)
  [[ -n $p ]] || { echo "|no pm_step line (exit $rc)"; return; }
  echo "|predicted step $(kv " $p" pred_ms) ms (SIMT attn)${m:+; attn N=4096 fwd+bwd measured $(kv " $m" meas_fwd_ms)+$(kv " $m" meas_bwd_ms) ms vs predicted SIMT $(kv " $m" simt_fwd_ms)+$(kv " $m" simt_bwd_ms), TC $(kv " $m" tc_fwd_ms)+$(kv " $m" tc_bwd_ms)}${l:+; w12 measured $(kv " $l" meas_fwd_ms)/$(kv " $l" meas_bwd_ms) vs predicted $(kv " $l" pred_fwd_ms)/$(kv " $l" pred_bwd_ms) ms}"
}
fig_torch() {
  local log=$1 rc=$2 line
  [[ $rc == 77 ]] && { echo "|$(skip_reason "$log")"; return; }
  line=$(grep '^torch_step_ms ' "$log" | tail -1)
  [[ -n $line ]] || { echo "|no torch_step_ms line (exit $rc)"; return; }
  echo "|torch.compile+SDPA bf16 $(kv " $line" config) bs$(kv " $line" batch): $(kv " $line" median) ms/step"
}
fig_sanitizer() {
  local log=$1 rc=$2 errs tested names
  if grep -q '^SANITIZER-UNSUPPORTED' "$log"; then echo "skipped|compute-sanitizer refused the device"; return; fi
  if [[ $rc == 77 ]]; then echo "skipped|$(skip_reason "$log")"; return; fi
  if grep -q 'Synthesis: Tested: 0 ' "$log"; then echo "FAIL|a sanitizer filter matches no test"; return; fi
  errs=$(awk '/^========= ERROR SUMMARY: [0-9]+/ { n += $4; seen = 1 } END { if (seen) print n }' "$log")
  tested=$(sed -n -E 's/.*Synthesis: Tested: ([0-9]+) \| Passing: ([0-9]+).*/\2\/\1/p' "$log" | paste -sd' ')
  names=$(strip_log "$log" | sed -n -E 's/^\[FAIL\] ([^:]+::[^:]+):.*/\1/p' | head -4 | tr '\n' ' ')
  echo "|${errs:-no} sanitizer errors; tests passed (ops, attn): ${tested:-none}${names:+; failed: ${names% }}"
}

# ---------------------------------------------------------------- the runner
names=() results=() secs=() figs=()
stop_reason="" # set when a step makes the rest pointless (a0: the driver)
record() { names+=("$1"); results+=("$2"); secs+=("$3"); figs+=("$4"); }
# exec_limited LIMIT LOG CMD...: the command under timeout, output appended to
# LOG. In the background with `wait`, so a TERM to this script is handled at
# once (timeout runs in a process group of its own, which a TERM to ours misses).
child=""
exec_limited() {
  local lim=$1 log=$2 rc
  shift 2
  timeout -k 10 "$lim" "$@" >>"$log" 2>&1 </dev/null &
  child=$!
  wait "$child"
  rc=$?
  child=""
  return "$rc"
}
classify() { # exit status -> result
  case $1 in
    0) echo ok ;;
    77) echo skipped ;;
    124 | 137) echo timeout ;;
    *) echo FAIL ;;
  esac
}
cap_log() { # keep a runaway log to its first 1 MiB and last 2 MiB
  local log=$1
  if (($(stat -c %s "$log") > 4194304)); then
    { head -c 1048576 "$log"; printf '\n[... cut by run_gpu_checks ...]\n'; tail -c 2097152 "$log"; } >"$log.cut"
    mv -f "$log.cut" "$log"
  fi
}
# run_step ID NAME CAP MIN FIGFN DRYOK CMD...: run CMD for at most CAP seconds
# (less when the budget is short; not at all below MIN), log, record, archive.
run_step() {
  local id=$1 name=$2 cap=$3 min=$4 figfn=$5 dryok=$6
  shift 6
  local label="$id $name" log="$logs/$id-$name.log" left lim rc res fig t0 prog
  left=$((deadline - SECONDS - reserve))
  lim=$((cap < left ? cap : left))
  if [[ -n $stop_reason ]]; then
    record "$label" skipped 0 "not run: $stop_reason"
    echo "run_gpu_checks: [$((SECONDS - t_start))s] $label: skipped (not run: $stop_reason)"
    publish
    return
  fi
  prog=$1
  [[ $prog == env ]] && prog=$(printf '%s\n' "$@" | grep "^$bin/" | head -1)
  if ((!dry)) && [[ $prog == "$bin"/* && ! -x $prog ]]; then
    record "$label" skipped 0 "$(basename "$prog") is not in the bundle"
    echo "run_gpu_checks: [$((SECONDS - t_start))s] $label: skipped ($(basename "$prog") not in .gpu/bin)"
    publish
    return
  fi
  if ((lim < min)); then
    record "$label" skipped 0 "no time left (${left}s of the budget, needs ${min}s)"
    echo "run_gpu_checks: [$((SECONDS - t_start))s] $label: skipped (no time left)"
    publish
    return
  fi
  { echo "# step $label: $*"; echo "# limit ${lim}s, started $(date -u +%H:%M:%SZ)"; } >"$log"
  t0=$SECONDS
  current=$label
  if ((dry && !dryok)); then
    echo "# dry run: not run" >>"$log"
    exec_limited "$lim" "$log" true
    rc=$?
    res=skipped fig="dry run"
    [[ $rc == 0 ]] || res=FAIL fig="dry run: the runner's 'true' exited $rc"
  else
    exec_limited "$lim" "$log" "$@"
    rc=$?
    echo "# exit $rc after $((SECONDS - t0))s" >>"$log"
    fig=$("$figfn" "$log" "$rc" "${FIG_ARG:-}")
    res=${fig%%|*}
    fig=${fig#*|}
    [[ -n $res ]] || res=$(classify "$rc")
    [[ $res == timeout ]] && fig="cut at ${lim}s; $fig"
  fi
  current=""
  cap_log "$log"
  record "$label" "$res" $((SECONDS - t0)) "$fig"
  echo "run_gpu_checks: [$((SECONDS - t_start))s] $label: $res ($((SECONDS - t0))s) $fig"
  if [[ $res == FAIL || $res == timeout ]]; then tail -8 "$log" | sed 's/^/    | /'; fi
  publish
}

# ---------------------------------------------------------------- output
attn_table() { # the attention comparison from c1 and c2's logs
  cat "$logs"/c1-*.log "$logs"/c2-*.log 2>/dev/null | awk '
    /^(attn|sla2|sdpa) / {
      n = ""; t = ""; f = "";
      for (i = 2; i <= NF; i++) {
        split($i, kv, "=");
        if (kv[1] == "N") n = kv[2]; else if (kv[1] == "total_ms") t = kv[2];
        else if (kv[1] == "total_tflops") f = kv[2]; else if (kv[1] == "vs_full") f = kv[2];
      }
      ms[$1 "/" n] = t; fl[$1 "/" n] = f;
      if (!(n in seen)) { seen[n] = 1; order[++cnt] = n }
    }
    function v(x) { return x != "" ? x : "-" }
    END {
      if (cnt == 0) exit;
      printf "attention, bf16, d=64, forward+backward (B*H = 65536/N; SDPA/ours above 1: ours is faster):\n";
      printf "%6s %10s %8s %10s %8s %10s %10s %9s\n", "N", "flash ms", "TFLOP/s", "SDPA ms", "TFLOP/s", "SDPA/ours", "SLA2 ms", "full/SLA2";
      for (i = 1; i <= cnt; i++) {
        n = order[i]; a = ms["attn/" n]; s = ms["sdpa/" n];
        r = (a != "" && s != "" && a + 0 > 0) ? sprintf("%.2f", s / a) : "-";
        printf "%6s %10s %8s %10s %8s %10s %10s %9s\n", n, v(a), v(fl["attn/" n]), v(s), v(fl["sdpa/" n]), r,
          v(ms["sla2/" n]), v(fl["sla2/" n]);
      }
    }'
}
summary_table() {
  local i nf=0 nt=0 ns=0
  printf '%s\n' "== run_gpu_checks summary$( ((dry)) && echo ' (dry run)'): budget ${budget}s, used $((SECONDS - t_start))s =="
  printf '%-22s %-8s %5s  %s\n' step result secs "key figure"
  for i in "${!names[@]}"; do
    printf '%-22s %-8s %5s  %s\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}" "${figs[$i]}"
    case ${results[$i]} in FAIL) nf=$((nf + 1)) ;; timeout) nt=$((nt + 1)) ;; skipped) ns=$((ns + 1)) ;; esac
  done
  echo "== $nf failed, $nt timed out, $ns skipped, $((${#names[@]} - nf - nt - ns)) ok; logs: $out/gpu-logs.tar.gz =="
}
publish() { # summary.txt, bench.txt and the log archive in OUT, after every step
  summary_table >"$logs/summary.txt"
  { grep -h -E '^(# |cuda_probe |attn |sla2 |sdpa |pm_[a-z]+ |train_step |torch_step_ms |curve_gap |seconds per step)' \
      "$logs"/a0-*.log "$logs"/c[0-9]-*.log "$logs"/d-*.log "$logs"/g-*.log 2>/dev/null |
      grep -v -E '^# (step|limit|exit|dry run)' 
    echo
    attn_table; } >"$logs/bench.txt"
  cp "$logs/summary.txt" "$logs/bench.txt" "$out/"
  tar -C "$work" -czf "$work/gpu-logs.tar.gz" gpu-logs && cp "$work/gpu-logs.tar.gz" "$out/gpu-logs.tar.gz.part" &&
    mv -f "$out/gpu-logs.tar.gz.part" "$out/gpu-logs.tar.gz"
}
# shellcheck disable=SC2317
on_signal() {
  if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  record "${current:-(between steps)}" timeout $((SECONDS - t_start)) "stopped by a signal after $((SECONDS - t_start))s of the run"
  publish
  summary_table
  exit 124
}
trap on_signal TERM INT

# ---------------------------------------------------------------- self-test (dry run)
selftest() { # prints problems, one a line; none = sound
  local t=$work/selftest r f
  mkdir -p "$t"
  : >"$t/log"
  exec_limited 5 "$t/log" true; r=$(classify $?); [[ $r == ok ]] || echo "runner: true -> $r"
  exec_limited 5 "$t/log" false; r=$(classify $?); [[ $r == FAIL ]] || echo "runner: false -> $r"
  exec_limited 5 "$t/log" sh -c 'exit 77'; r=$(classify $?); [[ $r == skipped ]] || echo "runner: exit 77 -> $r"
  exec_limited 1 "$t/log" sleep 5; r=$(classify $?); [[ $r == timeout ]] || echo "runner: sleep 5 in 1s -> $r"
  # the figure parsers on canned output
  printf '%s\n' '[RUN ] cuda_ops::a' '[PASS] cuda_ops::a: (0.01s)' '[RUN ] cuda_ops::b' '[FAIL] cuda_ops::b: (0.02s)' \
    '[====] Synthesis: Tested: 2 | Passing: 1 | Failing: 1 | Crashing: 0 ' >"$t/crit"
  f=$(fig_criterion "$t/crit" 1); [[ $f == "|1/2 passed; failed: cuda_ops::b" ]] || echo "fig_criterion: '$f'"
  printf '%s\n' '[RUN ] cuda_attn::big' >"$t/crit2"
  f=$(fig_criterion "$t/crit2" 124); [[ $f == *"last test started: cuda_attn::big"* ]] || echo "fig_criterion (cut): '$f'"
  printf '%s\n' 'attn N=4096 B=1 H=16 d=64 prec=bf16 fwd_ms=1.000 bwd_ms=2.000 total_ms=3.000 fwd_tflops=1.00 bwd_tflops=1.00 total_tflops=312.00' \
    'sla2 N=4096 B=1 H=16 d=64 prec=bf16 topk=0.15 blocks=64 fwd_ms=0.5 bwd_ms=0.5 total_ms=1.000 dense_tflops=900.0 vs_full=3.00' >"$t/c1"
  printf '%s\n' 'sdpa N=4096 B=1 H=16 d=64 prec=bf16 backend=flash fwd_ms=0.5 bwd_ms=1.5 total_ms=2.000 fwd_tflops=1 bwd_tflops=1 total_tflops=450.00' >"$t/c2"
  f=$(fig_attn "$t/c1" 0); [[ $f == "|N=4096 flash 312.00 TFLOP/s fwd+bwd, SLA2 x3.00 faster" ]] || echo "fig_attn: '$f'"
  f=$(fig_sdpa "$t/c2" 0 "$t/c1"); [[ $f == "|N=4096 flash 312.00 vs SDPA 450.00 TFLOP/s" ]] || echo "fig_sdpa: '$f'"
  printf '%s\n' 'train_step config=c.yaml model=JiT-B/16 attn=full topk=- batch=64 prec=bf16 steps=10 ms_median=50.00 ms_min=49.00 img_per_s=1280.0 params=1 loss_first=1 loss_last=1' \
    'train_step config=d.yaml model=JiT-B/16 attn=sla2 topk=0.15 batch=64 prec=bf16 steps=10 ms_median=40.00 ms_min=39.00 img_per_s=1600.0 params=1 loss_first=1 loss_last=1' >"$t/d"
  f=$(fig_step "$t/d" 0); [[ $f == "|JiT-B/16 bf16 bs64: full 1280.0 img/s (50.00 ms), sla2 1600.0 img/s (40.00 ms)" ]] || echo "fig_step: '$f'"
  printf '%s\n' 'seconds per step: cpu 0.1, gpu bf16 0.01, gpu fp32 0.02' \
    'curve_gap steps=200 max_step_abs=0.1 (step 3) max_mean20_abs=0.01 (step 9) max_mean20_rel=0.02 gpu_fp32_max_mean20_abs=0.001 final_mean20 cpu=1 gpu_bf16=1 gpu_fp32=1' >"$t/g"
  f=$(fig_curve "$t/g" 0); [[ $f == "|mean20 gap bf16 vs cpu 0.01 (rel 0.02); cpu 0.1, gpu bf16 0.01, gpu fp32 0.02" ]] || echo "fig_curve: '$f'"
  printf '%s\n' 'GPU: NVIDIA H200, 570.1, 143771 MiB, 9.0' 'MISSING (test_cuda_ops): libnccl.so.2 => not found' >"$t/a"
  f=$(dry=0 fig_env "$t/a" 1); [[ $f == "|NVIDIA H200, driver 570.1; missing: libnccl.so.2" ]] || echo "fig_env: '$f'"
  f=$(dry=1 fig_env "$t/a" 1); [[ $f == "skipped|dry run: missing here: libnccl.so.2"* ]] || echo "fig_env (dry): '$f'"
  printf '%s\n' '========= Error: Device not supported' 'SANITIZER-UNSUPPORTED: x' >"$t/f"
  f=$(fig_sanitizer "$t/f" 77); [[ $f == "skipped|compute-sanitizer refused the device" ]] || echo "fig_sanitizer: '$f'"
  printf '%s\n' '[====] Synthesis: Tested: 5 | Passing: 5 | Failing: 0 | Crashing: 0 ' '========= ERROR SUMMARY: 0 errors' \
    '[====] Synthesis: Tested: 4 | Passing: 4 | Failing: 0 | Crashing: 0 ' '========= ERROR SUMMARY: 0 errors' >"$t/f2"
  f=$(fig_sanitizer "$t/f2" 0); [[ $f == "|0 sanitizer errors; tests passed (ops, attn): 5/5 4/4" ]] || echo "fig_sanitizer: '$f'"
  grep -qE "$UNSUPPORTED_RE" <<<'========= Error: Device not supported' || echo "UNSUPPORTED_RE misses 'Device not supported'"
  printf '%s\n' 'cuda_probe driver=12080 runtime=13000' >"$t/a0"
  f=$(fig_probe "$t/a0" 3); [[ $f == "FAIL|driver CUDA 12.8 (12080) is older than the runtime CUDA 13.0 (13000): nothing can run" ]] || echo "fig_probe (old driver): '$f'"
  printf '%s\n' 'cuda_probe driver=13000 runtime=13000 devices=1' 'cuda_probe device=0 name="NVIDIA H100 80GB HBM3" sm=90 memory_gib=79.2 multiprocessors=132' >"$t/a0"
  f=$(fig_probe "$t/a0" 0); [[ $f == "|driver CUDA 13.0, runtime CUDA 13.0; NVIDIA H100 80GB HBM3" ]] || echo "fig_probe: '$f'"
  printf '%s\n' 'pm_step config=c model=JiT-B/16 batch=64 attn=simt pred_ms=105.00 fwd_ms=1 bwd_ms=1 opt_ms=1 launches=1 model_tflop=1 mfu=0.1' \
    'pm_linear role=mlp.w12 M=18432 IC=768 OC=4096 pred_fwd_ms=0.500 pred_bwd_ms=1.000 meas_fwd_ms=0.700 meas_bwd_ms=1.400' \
    'pm_attn N=4096 B=1 H=16 d=64 simt_fwd_ms=2.571 simt_bwd_ms=11.562 tc_fwd_ms=0.201 tc_bwd_ms=0.514 simt_tflops=17 tc_tflops=336 meas_fwd_ms=3.000 meas_bwd_ms=12.000 meas_tflops=15' >"$t/c3"
  f=$(fig_model "$t/c3" 0); [[ $f == "|predicted step 105.00 ms (SIMT attn); attn N=4096 fwd+bwd measured 3.000+12.000 ms vs predicted SIMT 2.571+11.562, TC 0.201+0.514; w12 measured 0.700/1.400 vs predicted 0.500/1.000 ms" ]] || echo "fig_model: '$f'"
  printf '%s\n' 'torch_step_ms median=80.000 min=79.000 iters=10 batch=64 threads=1 device=cuda dtype=bf16 sdpa=1 compile=1 adamw=1 config=JiT-B/16' >"$t/c4"
  f=$(fig_torch "$t/c4" 0); [[ $f == "|torch.compile+SDPA bf16 JiT-B/16 bs64: 80.000 ms/step" ]] || echo "fig_torch: '$f'"
  # every test the sanitizer filters name exists
  local flt n
  for flt in "$SAN_OPS_MEMCHECK" "$SAN_ATTN_MEMCHECK" "$SAN_OPS_RACECHECK" "$SAN_ATTN_RACECHECK"; do
    n=${flt#*+(}
    for n in $(tr '|' ' ' <<<"${n%)}"); do
      grep -qE "^Test\(cuda_[a-z]+, ${n}[,)]" tests/test_cuda_*.c || echo "sanitizer filter names '$n': no such test in tests/test_cuda_*.c"
    done
  done
  # what the steps use exists
  for f in tests/bench/bench_sdpa.py tests/bench/bench_step_torch.py configs/jit-b16.yaml configs/jit-b16-sla2.yaml \
    configs/fmnist-tiny.yaml; do
    [[ -f $f ]] || echo "missing $f"
  done
  for f in cuda_probe test_cuda_ops test_cuda_attn test_cuda_attn_tc test_cuda_sla2_tc test_cuda_train bench_cuda_attn bench_cuda_curve \
    bench_cuda_step bench_perf_model; do
    grep -qE "(jit_test|add_executable)\(${f}[ )]" tests/CMakeLists.txt tests/bench/CMakeLists.txt tests/gpu/CMakeLists.txt ||
      echo "warning: $f is not a target in tests/{,bench/,gpu/}CMakeLists.txt (its step will be skipped)"
  done
  # the output: at most 8 files, the archive holds a log per step
  local nfiles
  nfiles=$(find "$out" -type f | wc -l)
  ((nfiles <= 8)) || echo "OUT holds $nfiles files (at most 8 come back)"
  tar tzf "$out/gpu-logs.tar.gz" >"$t/list" 2>/dev/null || echo "cannot list $out/gpu-logs.tar.gz"
  for f in "$logs"/*.log; do grep -qx "gpu-logs/$(basename "$f")" "$t/list" || echo "archive lacks $(basename "$f")"; done
  grep -qx gpu-logs/summary.txt "$t/list" || echo "archive lacks summary.txt"
  local rows=$((11 + 4 * all))
  (($(grep -c '^[a-g][0-9]* ' "$logs/summary.txt") == rows)) || echo "summary.txt does not have $rows step rows"
}

# ---------------------------------------------------------------- the steps
echo "run_gpu_checks: $( ((dry)) && echo 'DRY RUN, ')budget ${budget}s, output in $out, logs $logs"
LD=$ld
run_step a0 cuda_probe 20 5 fig_probe 0 env LD_LIBRARY_PATH="$LD" "$bin/cuda_probe"
if [[ ${results[-1]} == FAIL ]]; then
  stop_reason="the CUDA probe failed (a0)"
  echo "run_gpu_checks: STOP: ${figs[-1]}" >&2
fi
run_step a env 40 10 fig_env 1 "$self" --internal env
run_step b1 test_cuda_ops 80 20 fig_criterion 0 env LD_LIBRARY_PATH="$LD" JIT_CUDA_SYNC=1 "$bin/test_cuda_ops" --jobs 1 --verbose
run_step b2 test_cuda_attn 80 20 fig_criterion 0 env LD_LIBRARY_PATH="$LD" JIT_CUDA_SYNC=1 "$bin/test_cuda_attn" --jobs 1 --verbose
run_step b3 test_cuda_attn_tc 60 20 fig_criterion 0 env LD_LIBRARY_PATH="$LD" JIT_CUDA_SYNC=1 "$bin/test_cuda_attn_tc" --jobs 1 --verbose
run_step b4 test_cuda_sla2_tc 60 15 fig_criterion 0 env LD_LIBRARY_PATH="$LD" JIT_CUDA_SYNC=1 SLA2_TC_FULL=1 \
  "$bin/test_cuda_sla2_tc" --jobs 1 --verbose
run_step c1 bench_cuda_attn 60 20 fig_attn 0 env LD_LIBRARY_PATH="$LD" "$bin/bench_cuda_attn" --prec bf16 --iters 10 --max-n 16384
FIG_ARG=$logs/c1-bench_cuda_attn.log run_step c2 bench_sdpa 45 20 fig_sdpa 0 "$self" --internal sdpa --dtype bf16 --iters 10 --max-n 16384
run_step c3 bench_perf_model 45 15 fig_model 0 env LD_LIBRARY_PATH="$LD" "$bin/bench_perf_model" --measure --batch 64 \
  --iters 10 --config configs/jit-b16.yaml
run_step d bench_cuda_step 80 30 fig_step 0 env LD_LIBRARY_PATH="$LD" "$bin/bench_cuda_step" --batch 64 --precision bf16 \
  --topk 0.15 --steps 10 --warmup 3 configs/jit-b16.yaml configs/jit-b16-sla2.yaml
run_step c4 torch_step 120 60 fig_torch 0 "$self" --internal torchstep --device cuda --dtype bf16 --sdpa --compile \
  --adamw --config JiT-B/16 --batch 64 --iters 10 --warmup 3
if ((all)); then
  run_step e test_cuda_train 120 30 fig_criterion 0 env LD_LIBRARY_PATH="$LD" JIT_CUDA_SYNC=1 "$bin/test_cuda_train" --jobs 1 --verbose
  run_step f1 memcheck 60 20 fig_sanitizer 0 "$self" --internal sanitize memcheck
  if [[ ${figs[-1]} == "compute-sanitizer refused the device" ]]; then
    record "f2 racecheck" skipped 0 "compute-sanitizer refused the device (f1)"
    publish
  else
    run_step f2 racecheck 60 20 fig_sanitizer 0 "$self" --internal sanitize racecheck
  fi
  run_step g bench_cuda_curve 120 45 fig_curve 0 env LD_LIBRARY_PATH="$LD" "$bin/bench_cuda_curve" --steps 200
fi

# ---------------------------------------------------------------- finish
status=0
for r in "${results[@]}"; do [[ $r == FAIL || $r == timeout ]] && status=$((status + 1)); done
if ((dry)); then
  t0=$SECONDS
  problems=$(selftest)
  warnings=$(grep '^warning: ' <<<"$problems")
  problems=$(grep -v '^warning: ' <<<"$problems")
  if [[ -n $problems ]]; then
    echo "run_gpu_checks: dry-run self-test found problems:"
    while read -r line; do echo "    | $line"; done <<<"$problems"
    record "selftest" FAIL $((SECONDS - t0)) "$(head -1 <<<"$problems")"
    status=$((status + 1))
  else
    record "selftest" ok $((SECONDS - t0)) "runner, figures, filters, output sound${warnings:+; $(head -1 <<<"$warnings")}"
  fi
  [[ -n $warnings ]] && while read -r line; do echo "run_gpu_checks: $line"; done <<<"$warnings"
  publish
fi
bench=$(attn_table)
[[ -n $bench ]] && { echo; echo "$bench"; }
((tmp_out)) && echo "(dry run: OUT is a temporary folder, removed at exit)"
echo
summary_table
exit "$status"
