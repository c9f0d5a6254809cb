#!/usr/bin/env bash
# The main job: a compressed all-reduce where compression pays, on emulated
# hosts joined by slow links, against Open MPI and Gloo in the same run.
#
#   perf/bench-compressed.sh [--build-dir DIR] [--hosts N] [--size SIZE] [--iters N]
#                            [--codecs LIST] [--rate-mbit R] [--delay-ms D] [--loopback]
#                            [--out DIR] [--prefix P]
#
# By default: 4 hosts (network namespaces) joined by lc-linkemu at 1 Gbit/s
# each, 0.25 ms each way (perf/scenarios/dc.sh: the links of the
# compressed figures in docs/performance.md), one rank per host under one
# mpirun; lc-bench times a 64 MiB f32 all-reduce with Laconic uncompressed
# and with onebit, topk 1%, int8 and bf16 (error feedback on, one tensor key
# per codec), and Open MPI (ob1 + tcp btl) and Gloo (ring, halving-doubling,
# bcube) uncompressed, in the same processes over the same links. The link
# bound is computed at the TCP payload rate of the configured link
# (R x (MTU - 52) / MTU), so % of link bound is never flattered by a low
# measurement. perf/headline.py then prints the table and draws
# headline.png. Without root or ip netns (or with --loopback), the same
# table runs on this host's loopback, and it says why.
#
# Results go to perf/results/<date>-<time>-main/ (results.jsonl, the
# lc-bench log, headline.md, headline.png). The hosts are namespaces
# P-h0.. (--prefix, default lcmain). Everything started is stopped
# and every namespace removed on exit, on error and on Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build
hosts=4 size=64M iters=3 codecs=none,onebit,topk:0.01,int8,bf16
rate=1000 delay=0.25 mtu=9000 loopback=0 out="" prefix=lcmain
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$(realpath "$2"); shift ;;
    --hosts) hosts=$2; shift ;;
    --size) size=$2; shift ;;
    --iters) iters=$2; shift ;;
    --codecs) codecs=$2; shift ;;
    --rate-mbit) rate=$2; shift ;;
    --delay-ms) delay=$2; shift ;;
    --loopback) loopback=1 ;;
    --out) out=$2; shift ;;
    --prefix) prefix=$2; shift ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench-compressed: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $hosts =~ ^[0-9]+$ ]] && [ "$hosts" -ge 2 ] && [ "$hosts" -le 16 ] ||
    { echo "bench-compressed: --hosts must be 2..16" >&2; exit 2; }
[[ $rate =~ ^[0-9]+$ ]] && [ "$rate" -gt 0 ] || { echo "bench-compressed: --rate-mbit must be a whole number > 0" >&2; exit 2; }
bench=$build/perf/lc-bench emu=$build/perf/lc-linkemu topo=$here/net/topo.sh
[ -x "$bench" ] || { echo "bench-compressed: $bench missing: build first" >&2; exit 1; }
py=$(command -v python3 || true)
[ -n "$py" ] || { echo "bench-compressed: python3 not found (apt-get install python3)" >&2; exit 1; }

# The baselines lc-bench was built with, and a launcher for them.
baselines=""
for b in mpi gloo; do
    "$bench" --baseline "$b" --help >/dev/null 2>&1 && baselines=${baselines:+$baselines,}$b
done
command -v mpirun >/dev/null || baselines=${baselines/mpi/}
baselines=${baselines#,}
[ -n "$baselines" ] || { echo "bench-compressed: lc-bench has no baseline (it needs libopenmpi-dev or libgloo-dev at build time)" >&2; exit 1; }
[ "$baselines" = mpi,gloo ] || echo "bench-compressed: baselines: $baselines only"

if [ "$loopback" = 0 ]; then
    why=""
    if [ "$(id -u)" != 0 ]; then why="not root"
    elif ! ip netns list >/dev/null 2>&1; then why="'ip netns' does not work here"
    elif ! command -v mpirun >/dev/null; then why="mpirun not found (the emulated hosts are launched by mpirun)"
    elif [ ! -x "$emu" ]; then why="$emu missing"
    elif [ ! -c /dev/net/tun ]; then why="no /dev/net/tun for the link emulator"
    fi
    if [ -n "$why" ]; then
        echo "bench-compressed: $why: running on this host's loopback instead of emulated 1 Gbit/s links"
        loopback=1
    fi
fi

out=${out:-$root/perf/results/$(date +%Y-%m-%d-%H%M%S)-main}
mkdir -p "$out"
res=$out/results.jsonl log=$out/lc-bench.log
: >"$res"

# The benchmark runs in the background and is waited for, so Ctrl-C or TERM
# reaches the trap at once; the trap stops it, then removes the hosts.
step_pid=""
cleanup() {
    if [ -n "$step_pid" ]; then
        kill -TERM "$step_pid" 2>/dev/null || true
        wait "$step_pid" 2>/dev/null || true
    fi
    [ "$loopback" = 1 ] || bash "$topo" down --prefix "$prefix" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

# A compressed call with error feedback is warm from its fourth call on (its
# first calls fault in the residuals and scratch); the baselines get one.
args=(--coll allreduce -b "$size" -e "$size" -n "$iters" -w 1 --coded-warmup 3
      --codec "$codecs" --baseline "$baselines" --json "$res")
# The benchmark measures speed, not failure detection: idle connections carry
# heartbeats while the baselines flood the links (see perf/run_all).
export LC_PEER_TIMEOUT_MS=${LC_PEER_TIMEOUT_MS:-10000}
start=$(date +%s)
if [ "$loopback" = 1 ]; then
    title="all-reduce, $size f32 per rank, 4 ranks on this host (TCP loopback)"
    args+=(--scenario loopback)
    if [[ $baselines == *mpi* ]]; then
        cmd=(mpirun --allow-run-as-root -n 4 --oversubscribe --bind-to none --mca pml ob1
             --mca btl self,tcp --mca btl_tcp_if_include lo -x LC_PEER_TIMEOUT_MS "$bench" "${args[@]}")
    else
        cmd=("$build/tools/lcrun" -n 4 -- "$bench" "${args[@]}")
    fi
else
    payload=$(awk -v r="$rate" -v m="$mtu" 'BEGIN { printf "%.1f", r * (m - 52) / m }')
    rtt=$(awk -v d="$delay" 'BEGIN { printf "%g", 2 * d }')
    title="all-reduce, $size f32 per rank, $hosts hosts, $rate Mbit/s links, $rtt ms RTT (lc-linkemu)"
    echo "bench-compressed: $hosts emulated hosts, $rate Mbit/s, RTT $rtt ms, MTU $mtu"
    bash "$topo" up "$hosts" --prefix "$prefix" --link emu --emu "$emu" --rate-mbit "$rate" \
        --delay-ms "$delay" --mtu "$mtu" >"$out/topo.log" 2>&1 ||
        { cat "$out/topo.log" >&2; echo "bench-compressed: the emulated hosts did not come up" >&2; exit 1; }
    args+=(--scenario "emu-${rate}mbit-${rtt}ms" --link-mbps "$payload")
    cmd=(bash "$topo" mpirun --prefix "$prefix" -- --mca pml ob1 --mca btl self,tcp
         -x LC_PEER_TIMEOUT_MS "$bench" "${args[@]}")
fi
echo "bench-compressed: ${codecs//,/, } and $baselines, $iters timed calls each (a minute or two)"
rc=0
timeout -k 10 600 "${cmd[@]}" >"$log" 2>&1 &
step_pid=$!
wait "$step_pid" || rc=$?
step_pid=""
if [ "$rc" != 0 ]; then
    echo "bench-compressed: lc-bench failed (rc $rc); last lines of $log:" >&2
    tail -15 "$log" >&2
    exit 1
fi
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
echo
"$py" "$here/headline.py" "$res" --title "$title" --md "$out/headline.md" --png "$out/headline.png"
echo "commit $commit, $(($(date +%s) - start)) s; rows, log and chart in $out"
