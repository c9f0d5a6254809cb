#!/usr/bin/env bash
# Emulated hosts for benchmarks and tests: N network namespaces whose only
# link to each other is lc-linkemu (user-space, on TUN devices), which adds
# the one-way delay, jitter, rate limit and loss asked for.
#
#   perf/net/topo.sh up N [--emu PATH] [--delay-ms D] [--jitter-ms J] [--rate-mbit R]
#                        [--loss PCT] [--queue-kb Q] [--mtu M] [--seed S] [--prefix P]
#   perf/net/topo.sh down [--prefix P]
#   perf/net/topo.sh addr I [--prefix P]          host I's address
#   perf/net/topo.sh exec I [--prefix P] -- CMD   run CMD on host I
#
# Hosts are namespaces P-h0 .. P-h(N-1) (P defaults to lcnet) with addresses
# 10.77.0.1 .. 10.77.0.N on their TUN device; traffic stays inside the
# namespaces this script creates. "up" returns once the emulator is ready;
# "down" stops it and deletes the namespaces (also safe when half set up).
# "up" replaces a running topology of the same prefix: use your own prefix
# (letters, digits, _) to run several. Needs root and the ip tool.
set -euo pipefail
cmd=${1:-}
shift || true
prefix=lcnet
emu=""
emu_args=()
n=0
idx=""
case "$cmd" in
up) n=${1:?topo.sh up N}; shift ;;
addr | exec) idx=${1:?topo.sh $cmd I}; shift ;;
down) ;;
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=$2; shift ;;
    --emu) emu=$2; shift ;;
    --delay-ms | --jitter-ms | --rate-mbit | --loss | --queue-kb | --mtu | --seed)
        emu_args+=("$1" "$2"); shift ;;
    --) shift; break ;;
    *) echo "topo.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $prefix =~ ^[A-Za-z0-9_]+$ ]] || { echo "topo.sh: prefix '$prefix' must be letters, digits or _" >&2; exit 2; }
state=/run/$prefix
addr_of() { echo "10.77.0.$(($1 + 1))"; }

down() {
    if [ -f "$state/emu.pid" ]; then
        pid=$(cat "$state/emu.pid")
        # Only our emulator: the pid may have been reused since it died.
        if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "lc-linkemu.* --host $prefix-h"; then
            pid=""
        fi
    fi
    if [ -n "${pid:-}" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-h[0-9]+$" || true); do
        # Anything still running inside goes with its namespace.
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns delete "$ns"
    done
    rm -rf "$state"
}

case "$cmd" in
down) down; exit 0 ;;
addr) addr_of "$idx"; exit 0 ;;
exec) exec ip netns exec "$prefix-h$idx" "$@" ;;
esac

[ "$(id -u)" = 0 ] || { echo "topo.sh: needs root" >&2; exit 1; }
[ "$n" -ge 2 ] || { echo "topo.sh: at least 2 hosts" >&2; exit 2; }
if [ -z "$emu" ]; then
    for c in "$(dirname "$0")/../../build/perf/lc-linkemu" "$(command -v lc-linkemu || true)"; do
        [ -n "$c" ] && [ -x "$c" ] && { emu=$c; break; }
    done
fi
[ -x "$emu" ] || { echo "topo.sh: lc-linkemu not found (build it, or pass --emu)" >&2; exit 1; }
down
mkdir -p "$state"
trap 'down' ERR
trap 'down; exit 130' INT TERM
hosts=()
for i in $(seq 0 $((n - 1))); do
    ip netns add "$prefix-h$i"
    ip -n "$prefix-h$i" link set lo up
    hosts+=(--host "$prefix-h$i:$(addr_of "$i")")
done
"$emu" "${hosts[@]}" ${emu_args[@]+"${emu_args[@]}"} >"$state/emu.log" 2>&1 &
echo $! >"$state/emu.pid"
for _ in $(seq 100); do
    grep -q ': ready$' "$state/emu.log" && break
    kill -0 "$(cat "$state/emu.pid")" 2>/dev/null || { cat "$state/emu.log" >&2; false; }
    sleep 0.05
done
grep -q ': ready$' "$state/emu.log" || { echo "topo.sh: emulator did not start" >&2; false; }
for i in $(seq 0 $((n - 1))); do
    ip -n "$prefix-h$i" addr add "$(addr_of "$i")/24" dev lcemu0
    ip -n "$prefix-h$i" link set lcemu0 up
done
trap - ERR INT TERM
head -1 "$state/emu.log"
