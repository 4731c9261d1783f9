# tests/lib.sh — what the shell tests share. Sourced after `set -uo pipefail`:
#
#   . "$(dirname "$0")/lib.sh" NAME
#
# gives every check one line and a count, the verdict at the end, and the
# mpirun line of the multi-rank tests:
#   ok WHAT, bad WHAT   "NAME: PASS WHAT" / "NAME: FAIL WHAT", counted in $pass and $fail
#   check WHAT CMD...   runs CMD: ok WHAT if it succeeds, else bad WHAT
#   $mpirun             mpirun as root, oversubscribed, unbound, one OpenMP thread per rank
#                       (the tests' ranks share two cores)
#   t_done              "NAME: P passed, F failed"; its status is the test's (0 when none failed),
#                       so it is the script's last command
#   t_work SRC BUILD DIR  $src and $build (absolute), $work = $build/DIR, emptied and made, and the
#                       current directory $src (the tests name configs/ and scripts/ from there)
t_name=$1
pass=0
fail=0
ok() { echo "$t_name: PASS $*"; pass=$((pass + 1)); }
bad() { echo "$t_name: FAIL $*"; fail=$((fail + 1)); }
check() { if "${@:2}"; then ok "$1"; else bad "$1"; fi; }
mpirun="mpirun --allow-run-as-root --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
t_done() {
    echo "$t_name: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
t_work() {
    src=$(cd "$1" && pwd) && build=$(cd "$2" && pwd) || exit 2
    work=$build/$3
    rm -rf "$work" && mkdir -p "$work" && cd "$src" || exit 2
}
