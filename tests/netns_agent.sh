#!/usr/bin/env bash
# tests/netns_agent.sh — a remote-shell stand-in for mpirun's launch agent
# (Open MPI: --mca plm_rsh_agent tests/netns_agent.sh): where mpirun would
# ssh to HOST and run COMMAND there, this runs COMMAND inside the Linux
# network namespace that plays HOST, so two namespaces on one machine act
# as two hosts (tests/hosts_test.sh).
#   netns_agent.sh [ssh-style options...] HOST COMMAND...
# HOST is looked up in JIT_NETNS_HOSTS ("HOST=NETNS HOST=NETNS ..."); like
# ssh, the words of COMMAND are joined and run by a shell (mpirun quotes its
# daemon's arguments for that shell). JIT_NETNS_LOG, when set, gets one line
# per launch (which host, which namespace, what command).
set -u
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done # ssh options (-x, ...) mean nothing here
if [ $# -lt 2 ]; then
    echo "netns_agent.sh: usage: netns_agent.sh [options] HOST COMMAND..." >&2
    exit 2
fi
host=$1
shift
ns=
for pair in ${JIT_NETNS_HOSTS:-}; do
    [ "${pair%%=*}" = "$host" ] && ns=${pair#*=}
done
if [ -z "$ns" ]; then
    echo "netns_agent.sh: host '$host' is not in JIT_NETNS_HOSTS ('${JIT_NETNS_HOSTS:-}'): no namespace plays it" >&2
    exit 255
fi
[ -n "${JIT_NETNS_LOG:-}" ] && echo "host $host netns $ns: $*" >>"$JIT_NETNS_LOG"
exec ip netns exec "$ns" /bin/sh -c "$*"
