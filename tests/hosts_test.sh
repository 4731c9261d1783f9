#!/usr/bin/env bash
# tests/hosts_test.sh — 2 ranks on 2 "hosts": two Linux network namespaces on
# this machine, joined by a veth pair, each with its own address (10.213.0.1
# and .2/24, private to the namespaces: the machine's own network is not
# touched). mpirun runs in the first; it starts the second rank's daemon
# through tests/netns_agent.sh (Open MPI's plm_rsh_agent: where it would ssh
# to 10.213.0.2, the agent enters the second namespace), and the ranks talk
# MPI over TCP across the veth only (btl tcp,self; the out-of-band channel on
# the same subnet). The run (jit-train, the tiny config dist_test.sh uses, 4
# steps, 2 ranks x batch 4) must equal the one-host 2-rank run: the same
# losses and parameters, bit for bit (MPI's sum of two values is exact in
# either order, and both runs reduce the same buckets).
# Without the rights to make namespaces (not root, or a sandbox that refuses
# `ip netns add`), it checks what it can (the launch agent's host lookup) and
# exits 77 (ctest: skipped) with the refused command and its error.
#   usage: hosts_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" hosts_test
t_work "$1" "$2" hosts-test
agent=$src/tests/netns_agent.sh
py=/usr/bin/python3

# The agent without namespaces: an unknown host is refused by name.
out=$(JIT_NETNS_HOSTS="10.213.0.2=x" "$agent" -x 10.9.9.9 true 2>&1)
rc=$?
if [ $rc = 255 ] && [[ $out == *"host '10.9.9.9' is not in JIT_NETNS_HOSTS"* ]]; then ok "the launch agent refuses a host no namespace plays"
else bad "agent on an unknown host: rc $rc, output: $out"; fi

ns_a=jit-hosts-a-$$
ns_b=jit-hosts-b-$$
cleanup() { ip netns del "$ns_a" 2>/dev/null; ip netns del "$ns_b" 2>/dev/null; }
trap cleanup EXIT
refused() { # command...: run it; on failure skip with the command and its error
    local err
    if ! err=$("$@" 2>&1); then
        echo "hosts_test: SKIP the sandbox refused '$*': ${err:-exit status $?}"
        exit $([ $fail = 0 ] && echo 77 || echo 1)
    fi
}
refused ip netns add "$ns_a"
refused ip netns add "$ns_b"
refused ip -n "$ns_a" link add veth0 type veth peer name veth1 netns "$ns_b"
refused ip -n "$ns_a" addr add 10.213.0.1/24 dev veth0
refused ip -n "$ns_b" addr add 10.213.0.2/24 dev veth1
for ns in "$ns_a" "$ns_b"; do
    refused ip -n "$ns" link set lo up
done
refused ip -n "$ns_a" link set veth0 up
refused ip -n "$ns_b" link set veth1 up

for b in jit-train jit-prep; do
    [ -x "$build/$b" ] || { echo "hosts_test: FAIL $build/$b missing (build first)"; exit 1; }
done
"$build/jit-prep" --synthetic 64 --out "$work/data" --size 16 --channels 1 --classes 4 --seed 3 >/dev/null || exit 1
cat >"$work/small.yaml" <<YAML
run: {name: hosts, seed: 11}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,
        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,
        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}
data: {train: $work/data, batch_size: 4, prefetch: 2}
optim: {lr: 1.0e-3, warmup_steps: 2, ema: [0.99]}
train: {steps: 4, log_every: 1, checkpoint_every: 4}
sampling: {steps: 1, per_class: 1}
logging: {progress: false}
YAML
train=("$build/jit-train" --config "$work/small.yaml")
losses() { $py -c "import json,sys; print(' '.join(repr(json.loads(l)['loss']) for l in open(sys.argv[1]) if '\"loss\"' in l))" "$1"; }

# One host: both ranks here, shared memory between them.
$mpirun -np 2 "${train[@]}" --set run.out_dir="$work/one" >"$work/one.log" 2>&1 || bad "one-host run (see $work/one.log)"

# Two hosts: rank 0 in namespace a (mpirun's own), rank 1 in namespace b
# through the agent; TCP on 10.213.0.0/24 only.
export JIT_NETNS_HOSTS="10.213.0.2=$ns_b" JIT_NETNS_LOG=$work/agent.log
two=(ip netns exec "$ns_a" $mpirun --host 10.213.0.1:1,10.213.0.2:1 -np 2
    --mca plm_rsh_agent "$agent" --mca btl tcp,self --mca btl_tcp_if_include 10.213.0.0/24
    --mca oob_tcp_if_include 10.213.0.0/24)
echo "hosts_test: ${two[*]} jit-train ..."
timeout 300 "${two[@]}" sh -c 'echo "rank $OMPI_COMM_WORLD_RANK: $(ip -o -4 addr show | grep -o "10\.213\.0\.[0-9]*")"' \
    >"$work/where.log" 2>&1
if grep -q "rank 0: 10.213.0.1" "$work/where.log" && grep -q "rank 1: 10.213.0.2" "$work/where.log" &&
    grep -q "host 10.213.0.2 netns $ns_b: .*orted" "$work/agent.log"; then
    ok "rank 0 runs in namespace a (10.213.0.1), rank 1 in namespace b (10.213.0.2), started by the agent"
else bad "placement: $(cat "$work/where.log" "$work/agent.log" 2>/dev/null)"; fi
timeout 300 "${two[@]}" "${train[@]}" --set run.out_dir="$work/two" >"$work/two.log" 2>&1 || bad "two-host run (see $work/two.log)"

l1=$(losses "$work/one/metrics.jsonl" 2>/dev/null)
l2=$(losses "$work/two/metrics.jsonl" 2>/dev/null)
if [ -n "$l1" ] && [ "$l1" = "$l2" ]; then ok "4 losses bit-identical: $l2"; else bad "losses: one host [$l1], two hosts [$l2]"; fi
$py tests/compare_ckpts.py "$work/one/ckpt/latest" "$work/two/ckpt/latest" 1e-30 "hosts_test: two hosts vs one" &&
    ok "parameters bit-identical" || bad "parameters differ"
t_done
