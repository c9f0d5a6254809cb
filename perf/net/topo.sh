#!/usr/bin/env bash
# Emulated hosts for benchmarks and tests: N network namespaces joined
# either by lc-linkemu (user-space, on TUN devices), which adds the one-way
# delay, jitter, rate limit and loss asked for, or (--link veth) by veth
# pairs to a bridge, each host's link shaped both ways with tbf (rate only;
# for fast links the emulator cannot keep up with).
#
#   perf/net/topo.sh up N [--link emu|veth] [--emu PATH] [--delay-ms D] [--jitter-ms J]
#                        [--rate-mbit R] [--loss PCT] [--queue-kb Q] [--mtu M] [--seed S]
#                        [--prefix P]
#   perf/net/topo.sh down [--prefix P]
#   perf/net/topo.sh addr I [--prefix P]          host I's address
#   perf/net/topo.sh exec I [--prefix P] -- CMD   run CMD on host I
#   perf/net/topo.sh mpirun [--prefix P] -- ARGS  mpirun ARGS with one rank per host
#   perf/net/topo.sh agent [--prefix P] ADDR CMD  (mpirun's remote-shell agent)
#
# Hosts are namespaces P-h0 .. P-h(N-1) (P defaults to lcnet) with addresses
# 10.77.0.1 .. 10.77.0.N on an interface named lcemu0 in both modes; traffic
# stays inside the namespaces this script creates. "up" returns once the
# link is ready; "down" stops the emulator and deletes the namespaces (also
# safe when half set up). "up" replaces a running topology of the same
# prefix: use your own prefix (letters, digits, _) to run several. "mpirun"
# starts Open MPI's launcher on host 0 with a hostfile of the hosts and this
# script as its remote shell (it enters the host's namespace instead of
# ssh), out-of-band and TCP traffic both on lcemu0, so MPI runs over the
# same links as everything else. Needs root and the ip and tc tools.
set -euo pipefail
cmd=${1:-}
shift || true
prefix=lcnet
emu=""
emu_args=()
n=0
idx=""
link=emu
emu_only=()
rate_mbit=0
mtu=1500
case "$cmd" in
up) n=${1:?topo.sh up N}; shift ;;
addr | exec) idx=${1:?topo.sh $cmd I}; shift ;;
down | mpirun | agent) ;;
*) sed -n '2,26p' "$0"; exit 2 ;;
esac
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=$2; shift ;;
    --emu) emu=$2; shift ;;
    --link) link=$2; shift ;;
    --delay-ms | --jitter-ms | --rate-mbit | --loss | --queue-kb | --mtu | --seed)
        case $1 in
        --rate-mbit) rate_mbit=$2 ;;
        --mtu) mtu=$2 ;;
        *) emu_only+=("$1") ;;
        esac
        emu_args+=("$1" "$2"); shift ;;
    --) shift; break ;;
    *) [ "$cmd" = agent ] && break
       echo "topo.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $prefix =~ ^[A-Za-z0-9_]+$ ]] || { echo "topo.sh: prefix '$prefix' must be letters, digits or _" >&2; exit 2; }
state=/run/lc-topo/$prefix
addr_of() { echo "10.77.0.$(($1 + 1))"; }

down() {
    if [ -f "$state/emu.pid" ]; then
        pid=$(cat "$state/emu.pid")
        # Only our emulator: the pid may have been reused since it died.
        if ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "lc-linkemu.* --host $prefix-h"; then
            pid=""
        fi
    fi
    if [ -n "${pid:-}" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(h[0-9]+|sw)$" || true); do
        # Anything still running inside goes with its namespace.
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns delete "$ns"
    done
    rm -f "$state/emu.pid" "$state/emu.log" "$state/hosts"
    rmdir "$state" 2>/dev/null || true
}

case "$cmd" in
down) down; exit 0 ;;
addr) addr_of "$idx"; exit 0 ;;
exec) exec ip netns exec "$prefix-h$idx" "$@" ;;
agent)
    # mpirun calls: agent ADDR orted ARGS... (a command line for a shell).
    host=${1:?topo.sh agent ADDR CMD}; shift
    [[ $host =~ ^10\.77\.0\.([0-9]+)$ ]] || { echo "topo.sh agent: unknown host $host" >&2; exit 2; }
    i=$((BASH_REMATCH[1] - 1))
    exec ip netns exec "$prefix-h$i" env LC_IFADDR="$host" sh -c "$*" ;;
mpirun)
    [ -f "$state/hosts" ] || { echo "topo.sh: no topology '$prefix' is up" >&2; exit 1; }
    np=$(wc -l <"$state/hosts")
    exec ip netns exec "$prefix-h0" env LC_IFADDR="$(addr_of 0)" mpirun --allow-run-as-root \
        -n "$np" --hostfile "$state/hosts" --mca plm_rsh_agent "$(realpath "$0") agent --prefix $prefix" \
        --mca oob_tcp_if_include lcemu0 --mca btl_tcp_if_include lcemu0 "$@" ;;
esac

[ "$(id -u)" = 0 ] || { echo "topo.sh: needs root" >&2; exit 1; }
[ "$n" -ge 2 ] || { echo "topo.sh: at least 2 hosts" >&2; exit 2; }
case $link in emu | veth) ;; *) echo "topo.sh: --link emu|veth" >&2; exit 2 ;; esac
# Shared by both kinds of link: a clean start that is undone on any error
# or signal, the host namespaces, and their addresses (plus mpirun's hostfile).
setup_begin() {
    down
    mkdir -p "$state"
    trap 'down' ERR EXIT
    trap 'down; exit 130' INT TERM
}
setup_end() { trap - ERR EXIT INT TERM; }
make_hosts() {
    for i in $(seq 0 $((n - 1))); do
        ip netns add "$prefix-h$i"
        ip -n "$prefix-h$i" link set lo up
    done
}
address_hosts() { # once lcemu0 exists in every host
    for i in $(seq 0 $((n - 1))); do
        ip -n "$prefix-h$i" addr add "$(addr_of "$i")/24" dev lcemu0
        ip -n "$prefix-h$i" link set lcemu0 up
        echo "$(addr_of "$i") slots=1" >>"$state/hosts"
    done
}

if [ "$link" = veth ]; then
    [ ${#emu_only[@]} -eq 0 ] || { echo "topo.sh: ${emu_only[*]}: only with --link emu (veth links are shaped by rate alone)" >&2; exit 2; }
    [[ $rate_mbit =~ ^[0-9]+$ ]] || { echo "topo.sh: --link veth needs a whole --rate-mbit" >&2; exit 2; }
    [[ $mtu =~ ^[0-9]+$ ]] || { echo "topo.sh: --mtu must be a number" >&2; exit 2; }
    setup_begin
    sw=$prefix-sw
    ip netns add "$sw"
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    # tbf: a burst of 1 ms at the rate (at least 64 KiB, and at least
    # 2 MTU), at most 10 ms queued.
    burst=$((rate_mbit * 1000 / 8))
    [ "$burst" -ge 65536 ] || burst=65536
    [ "$burst" -ge $((2 * mtu)) ] || burst=$((2 * mtu))
    make_hosts
    for i in $(seq 0 $((n - 1))); do
        h=$prefix-h$i
        ip link add lcemu0 netns "$h" mtu "$mtu" type veth peer name "p$i" netns "$sw" mtu "$mtu"
        ip -n "$sw" link set "p$i" master br0 up
        if [ "$rate_mbit" != 0 ]; then
            ip netns exec "$h" tc qdisc add dev lcemu0 root tbf rate "${rate_mbit}mbit" burst "$burst" latency 10ms
            ip netns exec "$sw" tc qdisc add dev "p$i" root tbf rate "${rate_mbit}mbit" burst "$burst" latency 10ms
        fi
    done
    address_hosts
    setup_end
    echo "topo.sh: $n hosts on veth + bridge, ${rate_mbit} Mbit/s each way (0 = unshaped), MTU $mtu: ready"
    exit 0
fi
if [ -z "$emu" ]; then
    for c in "$(dirname "$0")/../../build/perf/lc-linkemu" "$(command -v lc-linkemu || true)"; do
        [ -n "$c" ] && [ -x "$c" ] && { emu=$c; break; }
    done
fi
[ -x "$emu" ] || { echo "topo.sh: lc-linkemu not found (build it, or pass --emu)" >&2; exit 1; }
setup_begin
make_hosts
hosts=()
for i in $(seq 0 $((n - 1))); do hosts+=(--host "$prefix-h$i:$(addr_of "$i")"); done
# The emulator stands in for wires and switches, which take no CPU from the
# hosts, and its timing is the link's: it runs at the lowest real-time
# priority (SCHED_FIFO 1), so a rank computing, or a compiler, cannot make
# it late (at nice -10 a parallel build cut a 100 Mbit/s link to 88). It
# sleeps in epoll between packets; if it saturates (it also runs the
# receivers' TCP stacks inside its TUN writes), the kernel's real-time
# throttling still leaves every core 5% for everything else. Where that
# throttling is off (sched_rt_runtime_us = -1), or chrt is refused, it runs
# at nice -10 instead.
prio=(nice -n -10)
if [ "$(cat /proc/sys/kernel/sched_rt_runtime_us 2>/dev/null || echo -1)" != -1 ] &&
    command -v chrt >/dev/null && chrt -f 1 true 2>/dev/null; then
    prio=(chrt -f 1)
fi
"${prio[@]}" "$emu" "${hosts[@]}" ${emu_args[@]+"${emu_args[@]}"} >"$state/emu.log" 2>&1 &
echo $! >"$state/emu.pid"
for _ in $(seq 100); do
    grep -q ': ready$' "$state/emu.log" && break
    kill -0 "$(cat "$state/emu.pid")" 2>/dev/null || { cat "$state/emu.log" >&2; false; }
    sleep 0.05
done
grep -q ': ready$' "$state/emu.log" || { echo "topo.sh: emulator did not start" >&2; false; }
address_hosts
setup_end
head -1 "$state/emu.log"
