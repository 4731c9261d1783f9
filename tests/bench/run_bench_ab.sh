#!/usr/bin/env bash
# tests/bench/run_bench_ab.sh — a CPU change measured before and after in one
# command on the same machine: two builds (say, one of the commit before the
# change and one of the change) take turns, so the machine's drift falls on
# both alike. Per build: the training step of fmnist-tiny (SLA2 at top-k 0.5;
# and with QAT) and fmnist-tiny-full (bench_profile: step ms, images/s, the
# attention op's ms, GFLOP/s against the sgemm measured in the same run),
# then the SLA2 op against full attention at N = 96 and 288 (bench_sla2).
# Prints one markdown table per benchmark, the minimum over ROUNDS turns.
#   usage: tests/bench/run_bench_ab.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [THREADS]
# A build directory needs bench_profile, bench_sla2 and jit-prep, e.g.
#   git worktree add /tmp/before <commit> && cmake -S /tmp/before -B /tmp/before/build -DJIT_CUDA=OFF &&
#   cmake --build /tmp/before/build --target bench_profile bench_sla2 jit-prep
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
builds=("$1" "$2")
names=(before after)
rounds=${3:-3}
threads=${4:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
for b in "${builds[@]}"; do
    for exe in tests/bench/bench_profile tests/bench/bench_sla2 jit-prep; do
        [[ -x $b/$exe ]] || { echo "run_bench_ab: $b/$exe not found (build it first)" >&2; exit 1; }
    done
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${builds[1]}/jit-prep" --synthetic 1024 --out "$work/data" --size 32 --channels 1 --classes 10 >/dev/null

# One bench_profile run -> "step_ms gflops of_peak attention_ms"
profile() { # BUILD CONFIG STEP
    OMP_NUM_THREADS=$threads "$1/tests/bench/bench_profile" --config "$root/$2" --at-step "$3" --steps 6 --warmup 2 \
        --set data.train="$work/data" --set run.out_dir="$work/run" |
        awk '/^step /{s=$2} /^(sla2_attention|attention) /{a=$4} /-> .* GFLOP\/s/{g=$(NF-1)}
             /achieved \/ sgemm peak/{p=$NF} END{print s, g, p, a}'
}
cases=("configs/fmnist-tiny.yaml 600 fmnist-tiny (SLA2, top-k 0.5)" "configs/fmnist-tiny.yaml 1100 fmnist-tiny (SLA2 + QAT)"
       "configs/fmnist-tiny-full.yaml 600 fmnist-tiny-full (full attention)")
for r in $(seq "$rounds"); do
    for c in "${!cases[@]}"; do
        read -r cfg step _ <<<"${cases[$c]}"
        for i in 0 1; do echo "$c $i $(profile "${builds[$i]}" "$cfg" "$step")" >>"$work/profile"; done
    done
    for i in 0 1; do
        OMP_NUM_THREADS=$threads "${builds[$i]}/tests/bench/bench_sla2" --iters 5 --max-n 288 |
            awk -v i="$i" -F'|' '$2 ~ /^ *[0-9]+ *$/ { # the full-ms column, and SLA2 ms = full / (full / SLA2)
                n = NF; ratio = $(n - 2); gsub(/[ x]/, "", ratio); full = $6;
                key = $2 "|" $4 "|" $5; gsub(/ /, "", key); print key, i, full + 0, full / ratio }' >>"$work/sla2"
    done
done

echo "Training step, minimum over $rounds rounds, $threads threads ($(date -u +%F)):"
echo
echo "| configuration | build | step ms | images/s | attention ms | GFLOP/s | of sgemm peak |"
echo "|---|---|---|---|---|---|---|"
for c in "${!cases[@]}"; do
    read -r _ _ label <<<"${cases[$c]}"
    for i in 0 1; do
        awk -v c="$c" -v i="$i" '$1 == c && $2 == i' "$work/profile" | sort -k3 -g | head -1 |
            awk -v label="$label" -v name="${names[$i]}" \
                '{printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s |\n", label, name, $3, 32000 / $3, $6, $4, $5}'
    done
done
echo
echo "SLA2 op against full attention (forward + backward, d = 64), minimum over $rounds rounds:"
echo
echo "| N | blocks | top-k | full ms before | SLA2 ms before | full / SLA2 before | full ms after | SLA2 ms after | full / SLA2 after |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '{k = $1; i = $2; if (!((k, i) in f) || $3 < f[k, i]) f[k, i] = $3; if (!((k, i) in s) || $4 < s[k, i]) s[k, i] = $4;
      if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
     END { for (j = 1; j <= n; j++) { k = order[j]; split(k, p, "|"); split(p[3], t, "(");
           printf "| %s | %s | %s | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |\n", p[1], p[2], t[1] " (" t[2],
                  f[k, 0], s[k, 0], f[k, 0] / s[k, 0], f[k, 1], s[k, 1], f[k, 1] / s[k, 1] } }' "$work/sla2"
