#!/usr/bin/env bash
# The emulated network of perf/net: lc-linkemu forwards between namespaces,
# adds the configured delay, limits the rate and drops as configured, and
# perf/net/topo.sh always removes what it created. Needs root and `ip netns`;
# without them it says so and is skipped (exit 77).
#   test_net.sh LINKEMU NETPROBE [LC_BENCH]
set -uo pipefail
EMU=$1 PROBE=$2 BENCH=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
topo=$here/perf/net/topo.sh
prefix="lct$$"
fails=0 n=0
if [ "$(id -u)" != 0 ]; then echo "SKIP: test_net needs root (network namespaces)"; exit 77; fi
if ! ip netns add "$prefix-probe" 2>/dev/null; then echo "SKIP: ip netns is not available"; exit 77; fi
ip netns delete "$prefix-probe"
if [ ! -c /dev/net/tun ]; then echo "SKIP: no /dev/net/tun"; exit 77; fi
# Leftovers of earlier runs killed before their trap ran (ctest's timeout is SIGKILL).
for old in $(ip netns list | awk '{print $1}' | sed -n 's/^\(lct[0-9]*\)-h[0-9]*$/\1/p' | sort -u); do
    kill -0 "${old#lct}" 2>/dev/null || bash "$topo" down --prefix "$old"
done
trap 'bash "$topo" down --prefix "$prefix"' EXIT

ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
# up ARGS...: a topology, or the test ends here (a failed set-up would make the checks
# below pass or fail for the wrong reason).
up() {
    bash "$topo" up "$@" --prefix "$prefix" --emu "$EMU" >/dev/null ||
        { fail "topo.sh up $*"; echo "1..$n"; exit 1; }
}
down() { bash "$topo" down --prefix "$prefix"; }
# probe ARGS...: one lc-netprobe run from host 0 to host 1; prints its result line.
probe() {
    bash "$topo" exec 1 --prefix "$prefix" -- timeout 30 "$PROBE" server >/dev/null 2>&1 &
    local srv=$! # the client retries for 5 s while the server starts
    timeout -k 5 "${PROBE_TIMEOUT:-25}" bash "$topo" exec 0 --prefix "$prefix" -- \
        "$PROBE" client 10.77.0.2 "$@"
    local rc=$?
    kill $srv 2>/dev/null
    wait $srv 2>/dev/null
    return $rc
}
# within X LO HI: LO <= X <= HI (decimals)
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# --- forwarding and delay: RTT = 2 x one-way delay, within 10%
up 2 --delay-ms 10
out=$(probe --pings 20 --bytes 1) && ok "forwards between namespaces ($out)" || fail "no connection through the emulator"
rtt=$(field "$out" rtt_ms)
if within "${rtt:-0}" 18 22; then ok "RTT $rtt ms for 10 ms each way"; else fail "RTT ${rtt:-?} ms, want 20 +- 10%"; fi
down

# --- rate: goodput of a 20 Mbit/s link. The emulator counts IP bytes, so TCP can reach
# 20 x 1448 / 1500 = 19.3 Mbit/s at MTU 1500; the bound above that catches a rate bug.
up 2 --delay-ms 2 --rate-mbit 20
out=$(probe --pings 5 --bytes 6000000)
rate=$(field "$out" rate_mbit)
if within "${rate:-0}" 17.4 19.6; then ok "rate $rate Mbit/s for 20 Mbit/s"; else fail "rate ${rate:-?} Mbit/s, want 17.4..19.6"; fi
# The same over 4 parallel streams (--streams): they share the link, so the total is the
# same rate, and every stream must have been accepted and acknowledged.
out=$(probe --pings 5 --bytes 6000000 --streams 4)
rate=$(field "$out" rate_mbit) streams=$(field "$out" streams)
if [ "${streams:-}" = 4 ] && within "${rate:-0}" 17.4 19.6; then
    ok "4 streams: rate $rate Mbit/s for 20 Mbit/s"
else
    fail "4 streams: ${out:-no result}, want streams=4 and rate 17.4..19.6"
fi
down

# --- loss: everything dropped means no connection; some loss is counted and survived
up 2 --loss 100
if PROBE_TIMEOUT=4 probe --pings 1 --bytes 1 >/dev/null 2>&1; then fail "a connection got through 100% loss"; else ok "100% loss: no connection"; fi
down
up 2 --delay-ms 1 --loss 2 --seed 7
out=$(probe --pings 50 --bytes 2000000) && ok "2% loss: transfer completes ($out)" || fail "2% loss: transfer failed"
pid=$(cat "/run/lc-topo/$prefix/emu.pid")
kill -USR1 "$pid"; sleep 0.2
drops=$(grep -o 'drop_loss=[0-9]*' "/run/lc-topo/$prefix/emu.log" | awk -F= '{s += $2} END {print s + 0}')
if [ "${drops:-0}" -gt 0 ]; then ok "emulator counted $drops lost packets"; else fail "no loss counted"; fi
down

# --- Laconic's link probe at set-up reads a shaped rate, and the compressed all-reduce
# choice follows it: at 200 Mbit/s, int8 (4x) carries 800 Mbit/s of data, under
# LC_CODED_RING_MBPS (8000), so the ring; with LC_CODED_RING_MBPS=0, two-phase.
# LC_WAN_RTT_US=0: the 0.5 ms round trip alone would give int8 the ring too.
# TCP's goodput at MTU 9000 is 199 Mbit/s; the probe reads slow start's first
# round trips and shares 2 cores with the emulator and 4 ranks (it read 158-175 here);
# the bounds catch a unit or timing error, and the ring needs under 2000.
if [ -n "$BENCH" ] && command -v mpirun >/dev/null; then
    up 4 --rate-mbit 200 --delay-ms 0.25 --mtu 9000
    # lc_bench RING_MBPS: sets rate (the slowest rate rank 0 logged) and algo (the
    # algorithm); the whole output goes to the log when either is missing.
    lc_bench() {
        local out
        out=$(timeout -k 5 120 bash "$topo" mpirun --prefix "$prefix" -- --mca pml ob1 \
            --mca btl self,tcp -x LC_LOG=info -x LC_WAN_RTT_US=0 -x LC_CODED_RING_MBPS="$1" "$BENCH" \
            --coll allreduce -b 4M -e 4M -n 1 -w 0 --codec int8 -c 0 2>&1)
        rate=$(echo "$out" | awk '/rank 0 .*Mbit\/s the slowest between hosts/ { for (i = 1; i < NF; i++) if ($i == "Mbit/s" && $(i + 1) == "the") r = $(i - 1) } END { print r + 0 }')
        algo=$(echo "$out" | awk '/^ +[0-9]/ { a = $6 } END { print a }')
        if [ -z "$algo" ] || [ "$rate" = 0 ]; then echo "$out" | tail -20 | sed 's/^/# /'; fi
    }
    lc_bench 8000
    if within "${rate:-0}" 60 205; then ok "link probe: $rate Mbit/s for 200 Mbit/s"; else fail "link probe: ${rate:-?} Mbit/s, want 60..205"; fi
    if [ "$algo" = ring ]; then ok "int8 all-reduce at $rate Mbit/s: ring"; else fail "int8 all-reduce at $rate Mbit/s: '${algo:-none}', want ring"; fi
    lc_bench 0
    if [ "$algo" = twophase ]; then ok "LC_CODED_RING_MBPS=0: twophase"; else fail "LC_CODED_RING_MBPS=0: '${algo:-none}', want twophase"; fi
    down
else
    echo "# no lc-bench or mpirun: the link probe checks are skipped"
fi

# --- clean-up
if ip netns list | grep -q "^$prefix-"; then fail "namespaces left behind"; else ok "no namespaces left"; fi
if pgrep -f "$EMU.*$prefix-h" >/dev/null; then fail "emulator left running"; else ok "no emulator left"; fi
echo "1..$n"
[ $fails -eq 0 ]
