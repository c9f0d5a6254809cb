#!/usr/bin/env bash
# Launcher tests: lcrun's environment, output tagging, failure propagation,
# timeout, Ctrl-C forwarding and clean-up; the example program under lcrun
# and under mpirun; lc_comm_init_mpi under mpirun.
#   test_launch.sh LCRUN HELLO [MPI_TEST]
# Every command runs under timeout(1); every process started here is gone
# when the script ends (checked), pass or fail.
set -uo pipefail
LCRUN=$1 HELLO=$2 MPI_TEST=${3:-}
fails=0 n=0
tmp=$(mktemp -d)
tag="lctest$$"  # marks our sleeps so the leftover check finds only ours
cleanup() { pkill -KILL -f "$tag" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
# check DESCRIPTION EXPECTED_RC CMD...: run CMD (30 s limit), compare its exit code.
check() {
    local what=$1 want=$2; shift 2
    timeout -k 5 30 "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$what (rc $rc)"; else
        fail "$what: rc $rc, want $want"; sed 's/^/  out: /' "$tmp/out"; sed 's/^/  err: /' "$tmp/err"; fi
}
no_leftovers() {
    sleep 0.2
    if pgrep -f "$tag" >/dev/null; then fail "$1: processes left behind"; pgrep -af "$tag"
    else ok "$1: nothing left behind"; fi
}
sleeper="exec -a sleep-$tag sleep 60"

# --- environment and tagging
check "env and --tag-output" 0 "$LCRUN" -n 3 --tag-output -- sh -c \
    'echo "rank=$LC_RANK size=$LC_WORLD_SIZE local=$LC_LOCAL_RANK key=${#LC_JOB_KEY} fd=${LC_COORD_FD:-none}"; echo "to stderr" >&2'
for r in 0 1 2; do
    fd=none; [ $r -eq 0 ] && fd='[0-9]+'
    if grep -Eq "^\[$r\] rank=$r size=3 local=$r key=64 fd=$fd\$" "$tmp/out" &&
        grep -q "^\[$r\] to stderr\$" "$tmp/err"; then ok "rank $r line tagged"; else
        fail "rank $r line missing"; cat "$tmp/out" "$tmp/err"; fi
done
check "-x sets variables" 0 "$LCRUN" -n 2 -x FOO=bar -- sh -c 'test "$FOO" = bar'

# --- usage errors
check "no -n is a usage error" 2 "$LCRUN" true
check "-n 0 is a usage error" 2 "$LCRUN" -n 0 true
check "no command is a usage error" 2 "$LCRUN" -n 2
check "missing program gives 127" 127 "$LCRUN" -n 2 -- /nonexistent/program

# --- failure propagation: one rank fails, the others are stopped at once
t0=$(date +%s)
check "a failing rank's code is lcrun's" 3 "$LCRUN" -n 4 -- bash -c \
    "if [ \$LC_RANK = 2 ]; then exit 3; fi; $sleeper"
[ $(($(date +%s) - t0)) -lt 10 ] && ok "others stopped promptly" || fail "others not stopped promptly"
no_leftovers "after a failing rank"
check "a rank killed by a signal gives 128+signal" 137 "$LCRUN" -n 2 -- bash -c \
    "if [ \$LC_RANK = 0 ]; then kill -KILL \$\$; fi; $sleeper"
no_leftovers "after a killed rank"
# A rank that ignores SIGTERM is killed after the grace period.
check "a rank ignoring SIGTERM is killed" 5 "$LCRUN" -n 2 -- bash -c \
    "trap '' TERM; if [ \$LC_RANK = 1 ]; then sleep 0.3; exit 5; fi; $sleeper"
no_leftovers "after SIGTERM-ignoring rank"

# --- timeout
t0=$(date +%s)
check "--timeout exits 124" 124 "$LCRUN" -n 2 --timeout 1 -- bash -c "$sleeper"
[ $(($(date +%s) - t0)) -lt 6 ] && ok "timeout honoured" || fail "timeout took too long"
no_leftovers "after timeout"

# --- Ctrl-C is forwarded to every rank
"$LCRUN" -n 3 -- bash -c "trap 'echo got-int-\$LC_RANK; exit 9' INT; $sleeper & wait" >"$tmp/int" 2>&1 &
lp=$!
sleep 0.5
kill -INT $lp
timeout 10 tail --pid=$lp -f /dev/null
wait $lp; rc=$?
[ $rc -eq 130 ] && ok "SIGINT gives 130" || fail "SIGINT gave $rc"
[ "$(grep -c got-int "$tmp/int")" -eq 3 ] && ok "every rank saw SIGINT" || { fail "SIGINT not forwarded"; cat "$tmp/int"; }
no_leftovers "after SIGINT"

# --- the example, under lcrun and under mpirun
check "example under lcrun -n 4" 0 "$LCRUN" -n 4 -- "$HELLO"
[ "$(grep -c ', 0 wrong element' "$tmp/out")" -eq 4 ] && ok "4 ranks right" || { fail "example output"; cat "$tmp/out"; }
check "example under lcrun -n 1" 0 "$LCRUN" -n 1 -- "$HELLO"
if command -v mpirun >/dev/null; then
    # Open MPI itself leaks at exit (its MCA components, op tables): under
    # ASan, leak checking is off for processes that initialize MPI.
    mpirun_cmd=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0"
        mpirun --oversubscribe --allow-run-as-root --mca btl self,tcp --mca pml ob1)
    # A port below the kernel's ephemeral range: no outgoing connection of
    # another process can hold it (a pick in 20000-40000 once met one at
    # 38778 and failed with "Address already in use").
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 11000 ] 2>/dev/null || low=32768
    port=$((10000 + RANDOM % (low - 10000)))
    check "example under mpirun -n 3" 0 "${mpirun_cmd[@]}" -n 3 \
        -x LC_COORD=127.0.0.1:$port -x LC_JOB_KEY=k$tag -- "$HELLO"
    [ "$(grep -c ', 0 wrong element' "$tmp/out")" -eq 3 ] && ok "3 ranks right" || { fail "mpirun example output"; cat "$tmp/out"; }
    if [ -n "$MPI_TEST" ]; then
        check "lc_comm_init_mpi under mpirun -n 3" 0 "${mpirun_cmd[@]}" -n 3 -- "$MPI_TEST"
        check "lc_comm_init_mpi under mpirun -n 4" 0 "${mpirun_cmd[@]}" -n 4 -- "$MPI_TEST"
    fi
else
    echo "# mpirun not installed: mpirun cases skipped"
fi

echo "1..$n"
[ $fails -eq 0 ] || { echo "$fails of $n failed"; exit 1; }
