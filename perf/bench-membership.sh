#!/usr/bin/env bash
# Membership figures (issue 18), with lc-failover (perf/lc-failover.c):
#
#   perf/bench-membership.sh [--build-dir DIR] [--out DIR] [--reps N] [--starve-runs N]
#                            [--starve-seconds S] [--only detect,stop,linkdown,agree,starve]
#
#   detect  SIGKILL of one rank in a loop of steps, for 2, 3, 4, 5 and 8 ranks
#           on this host and every all-reduce algorithm (uncompressed: ring,
#           tree, recdbl; onebit: two-phase, ring, tree; topk 1%: sparse),
#           --reps runs each (default 5): when every survivor saw the failure
#           (target: p99 <= 100 ms), and when its first step in the new view
#           committed (8 ranks: target <= 1 s).
#   stop    the same with SIGSTOP, 4 and 8 ranks, LC_PEER_TIMEOUT_MS=2000:
#           seen within the peer timeout + 10% (2.2 s), first step committed
#           within the peer timeout + 1 s (3 s).
#   linkdown  a rank's link cut (ip link set down in its network namespace; 4
#           namespaces on veth links, perf/net/topo.sh, needs root), --reps
#           runs: seen within the peer timeout + 10% (2.2 s).
#   agree   what lc_step_commit costs on the dc scenario (4 emulated hosts,
#           1 Gbit/s, 0.5 ms RTT; perf/net/topo.sh, needs root): a 64 MiB
#           onebit all-reduce step with and without it (target: <= 1 RTT + 2%).
#   starve  a rank at nice 19 beside 3 busy ranks, 10 s of computation between
#           steps, --starve-runs runs (default 100): false removals (target 0).
#
# Results: DIR/membership.jsonl (every run) and DIR/summary.md (the table
# printed at the end); DIR defaults to perf/results/<date>-membership.
# Everything started is stopped, and the namespaces removed, on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build out="" reps=5 starve_runs=100 starve_s=10 only=detect,stop,linkdown,agree,starve
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$(realpath "$2"); shift ;;
    --out) out=$2; shift ;;
    --reps) reps=$2; shift ;;
    --starve-runs) starve_runs=$2; shift ;;
    --starve-seconds) starve_s=$2; shift ;;
    --only) only=$2; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench-membership: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
    shift
done
fo=$build/perf/lc-failover lcrun=$build/tools/lcrun
[ -x "$fo" ] && [ -x "$lcrun" ] || { echo "bench-membership: build first ($fo, $lcrun)" >&2; exit 1; }
py=/usr/bin/python3
[ -x $py ] || py=$(command -v python3)
out=${out:-$root/perf/results/$(date +%Y-%m-%d-%H%M%S)-membership}
mkdir -p "$out"
res=$out/membership.jsonl
: >"$res"
prefix=lcmemb
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -f /dev/shm/lc-failover-lcmemb-$$-*
    if [[ $only == *agree* || $only == *linkdown* ]]; then
        bash "$here/net/topo.sh" down --prefix "$prefix" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
want() { [[ ,$only, == *,$1,* ]]; }
run=0
# One lcrun of lc-failover; its own job id names the mark file.
failover() {
    run=$((run + 1))
    local job=lcmemb-$$-$run
    LC_JOB_ID=$job timeout -k 5 120 "$lcrun" --keep-going "$@" >>"$out/runs.log" 2>&1 ||
        echo "bench-membership: run $run failed: $*" >&2
    rm -f "/dev/shm/lc-failover-$job"
}

if want detect; then
    echo "bench-membership: SIGKILL, 2-8 ranks x 7 algorithms x $reps runs"
    for n in 2 3 4 5 8; do
        for cfg in ring:none tree:none recdbl:none twophase:onebit ring:onebit tree:onebit \
            sparse:topk:0.01; do
            algo=${cfg%%:*} codec=${cfg#*:}
            for r in $(seq 1 "$reps"); do
                failover -n "$n" "$fo" fail --victim $((1 + r % (n - 1))) --at 3 --algo "$algo" \
                    --codec "$codec" --json "$res"
            done
        done
    done
fi
if want stop; then
    echo "bench-membership: SIGSTOP, 4 and 8 ranks x $reps runs (LC_PEER_TIMEOUT_MS=2000)"
    for n in 4 8; do
        for r in $(seq 1 "$reps"); do
            LC_PEER_TIMEOUT_MS=2000 failover -n "$n" "$fo" fail --signal stop \
                --victim $((1 + r % (n - 1))) --at 3 --json "$res"
        done
    done
fi
netns_ok() { [ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1; }
if want linkdown; then
    if ! netns_ok; then
        echo "bench-membership: linkdown needs root and ip netns; skipped"
    else
        echo "bench-membership: a rank's link cut, 4 namespaces x $reps runs (LC_PEER_TIMEOUT_MS=2000)"
        topo=$here/net/topo.sh
        bash "$topo" up 4 --prefix "$prefix" --link veth --rate-mbit 1000 >"$out/topo-veth.log" 2>&1 ||
            { cat "$out/topo-veth.log" >&2; exit 1; }
        a0=$(bash "$topo" addr 0 --prefix "$prefix")
        for r in $(seq 1 "$reps"); do
            job=lcmemb-$$-link$r mark=/dev/shm/lc-failover-lcmemb-$$-link$r
            key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
            pids=()
            LC_JOB_KEY=$key ip netns exec "$prefix-h0" "$build/tools/lccoord" --listen "$a0:29650" \
                --job-id "$job" >>"$out/runs.log" 2>&1 &
            pids+=($!)
            for i in 0 1 2 3; do
                ip netns exec "$prefix-h$i" env LC_RANK=$i LC_WORLD_SIZE=4 LC_COORD="$a0:29651" \
                    LC_JOB_KEY="$key" LC_JOB_ID="$job" LC_COORDINATOR="$a0:29650" \
                    LC_IFADDR="$(bash "$topo" addr $i --prefix "$prefix")" LC_PEER_TIMEOUT_MS=2000 \
                    LC_FAILOVER_MARK="$mark" \
                    timeout -k 5 60 "$fo" fail --victim 2 --signal none --json "$res" \
                    >>"$out/runs.log" 2>&1 &
                pids+=($!)
            done
            sleep 3
            $py -c 'import time; print("%.6f 0" % (time.monotonic() * 1000))' >"$mark"
            ip netns exec "$prefix-h2" ip link set lcemu0 down
            for i in 1 2 4; do wait "${pids[$i]}" || echo "bench-membership: linkdown run $r: a survivor failed" >&2; done
            for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
            pids=()
            ip netns exec "$prefix-h2" ip link set lcemu0 up
            rm -f "$mark"
        done
        bash "$topo" down --prefix "$prefix" >/dev/null 2>&1 || true
    fi
fi
if want agree; then
    if [ "$(id -u)" != 0 ] || ! command -v mpirun >/dev/null || [ ! -c /dev/net/tun ]; then
        echo "bench-membership: agree needs root, mpirun and /dev/net/tun (emulated dc links); skipped"
    else
        echo "bench-membership: lc_step_commit on the dc scenario (4 hosts, 1 Gbit/s, 0.5 ms RTT)"
        bash "$here/net/topo.sh" up 4 --prefix "$prefix" --link emu --emu "$build/perf/lc-linkemu" \
            --rate-mbit 1000 --delay-ms 0.25 --mtu 9000 >"$out/topo.log" 2>&1 ||
            { cat "$out/topo.log" >&2; exit 1; }
        LC_FAILOVER_VERBOSE=1 LC_PEER_TIMEOUT_MS=10000 timeout -k 10 600 bash "$here/net/topo.sh" \
            mpirun --prefix "$prefix" -- --mca pml ob1 --mca btl self,tcp -x LC_PEER_TIMEOUT_MS \
            -x LC_FAILOVER_VERBOSE \
            "$fo" agree --size 64M --codec onebit --iters 30 --rtt-ms 0.5 --json "$res" |
            tee -a "$out/agree.log"
        bash "$here/net/topo.sh" down --prefix "$prefix" >/dev/null 2>&1 || true
    fi
fi
if want starve; then
    echo "bench-membership: $starve_runs runs of a nice-19 rank beside 3 busy ones, ${starve_s} s each"
    for r in $(seq 1 "$starve_runs"); do
        failover -n 4 "$fo" starve --seconds "$starve_s" --steps 1 --json "$res"
    done
fi

"$py" "$here/membership_report.py" "$out/summary.md" "$res"
echo "bench-membership: rows in $res, table in $out/summary.md"
