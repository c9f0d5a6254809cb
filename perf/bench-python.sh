#!/usr/bin/env bash
# The Python package's figures, each a ratio within one run of this script:
#
#   perf/bench-python.sh [--build-dir DIR] [--rounds N] [--only latency|ddp|ddp-emu]
#                        [--params N] [--out DIR]
#
# latency  8-byte f32 all-reduce, 4 ranks on loopback (lcrun): lc-bench's C
#          call and perf/python/bench_py.py's call through the package,
#          timed the same way (back to back, per-iteration max over ranks,
#          median), in N alternating rounds; the ratio Python / C per round.
# ddp      DDP step time of a 12 M parameter MLP, 4 ranks on loopback, in the
#          same processes: DDP on Gloo's process group against DDP with
#          Laconic's hook (uncompressed), batch 32 and batch 4 per rank.
# ddp-emu  the same on 4 emulated hosts joined by 1 Gbit/s links (0.5 ms
#          round trip, perf/net/topo.sh with lc-linkemu, as the main job),
#          Gloo against the hook uncompressed and with onebit, batch 32 and 4
#          per rank (less compute, so the link's share shows). Needs root and
#          ip netns; skipped (and said) without them.
#
# Rows go to perf/results/<date>-<time>-python/results.jsonl; a table is
# printed. Everything started is stopped (namespaces removed) on exit,
# error or Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build rounds=3 only="" params=12e6 out="" prefix=lcpy
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$(realpath "$2"); shift ;;
    --rounds) rounds=$2; shift ;;
    --only) only=$2; shift ;;
    --params) params=$2; shift ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench-python: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
    shift
done
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
lcrun=$build/tools/lcrun bench=$build/perf/lc-bench topo=$here/net/topo.sh
for f in "$lcrun" "$bench" "$build/python/laconic/_config.py"; do
    [ -e "$f" ] || { echo "bench-python: $f missing: build first (cmake --build build)" >&2; exit 1; }
done
"$py" -c "import torch, numpy" 2>/dev/null ||
    { echo "bench-python: $py cannot import torch and numpy (scripts/install-deps.sh)" >&2; exit 1; }
export PYTHONPATH=$build/python${PYTHONPATH:+:$PYTHONPATH}
out=${out:-$root/perf/results/$(date +%Y-%m-%d-%H%M%S)-python}
mkdir -p "$out"
res=$out/results.jsonl
: >"$res"
topo_up=0
cleanup() { # every step runs under timeout(1), in the foreground: only the hosts remain
    [ "$topo_up" = 0 ] || bash "$topo" down --prefix "$prefix" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
free_port() { "$py" -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if want latency; then
    echo "bench-python: 8-byte all-reduce, C call against the Python package, $rounds rounds"
    for r in $(seq "$rounds"); do
        c=$(timeout -k 5 120 "$lcrun" -n 4 -- "$bench" --coll allreduce -b 8 -e 8 -n 5000 -w 500 |
            awk '$1 == 8 && $5 == "lc" { print $7 }')
        row="{\"bench\": \"latency\", \"round\": $r, \"c_us\": $c"
        for buf in numpy torch; do
            p=$(timeout -k 5 120 "$lcrun" -n 4 -- "$py" "$here/python/bench_py.py" latency \
                --iters 5000 --warmup 500 --buffer $buf |
                "$py" -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['time_us'])")
            row="$row, \"${buf}_us\": $p"
        done
        echo "$row}" >>"$res"
    done
fi

ddp_rows() { # LABEL CMD...: run bench_py.py ddp, tag its rows with LABEL
    local label=$1
    shift
    timeout -k 5 900 "$@" | grep '^{' | sed "s/^{/{\"scenario\": \"$label\", /" >>"$res"
}
if want ddp; then
    for batch in 32 4; do
        echo "bench-python: DDP step, $params parameters, batch $batch, loopback (Gloo vs hook)"
        LC_BENCH_GLOO_INIT=tcp://127.0.0.1:$(free_port) ddp_rows "loopback" \
            "$lcrun" -n 4 -- "$py" "$here/python/bench_py.py" ddp --params "$params" \
            --batch "$batch" --rounds "$rounds"
    done
fi

if want ddp-emu; then
    why=""
    if [ "$(id -u)" != 0 ]; then why="not root"
    elif ! ip netns list >/dev/null 2>&1; then why="'ip netns' does not work here"
    elif ! command -v mpirun >/dev/null; then why="mpirun not found"
    elif [ ! -c /dev/net/tun ]; then why="no /dev/net/tun for the link emulator"
    fi
    if [ -n "$why" ]; then
        echo "bench-python: $why: no DDP figures on emulated hosts"
    else
        echo "bench-python: DDP step on 4 emulated hosts, 1 Gbit/s, 0.5 ms RTT (Gloo vs hook, onebit)"
        bash "$topo" up 4 --prefix "$prefix" --link emu --emu "$build/perf/lc-linkemu" \
            --rate-mbit 1000 --delay-ms 0.25 --mtu 9000 >"$out/topo.log" 2>&1 ||
            { cat "$out/topo.log" >&2; exit 1; }
        topo_up=1
        h0=$(bash "$topo" addr 0 --prefix "$prefix")
        for batch in 32 4; do
            LC_COORD=$h0:$((29500 + batch)) LC_BENCH_GLOO_INIT=tcp://$h0:$((29600 + batch)) \
                GLOO_SOCKET_IFNAME=lcemu0 LC_PEER_TIMEOUT_MS=10000 ddp_rows "emu-1000mbit-0.5ms" \
                bash "$topo" mpirun --prefix "$prefix" -- -x PYTHONPATH -x LC_COORD \
                -x LC_BENCH_GLOO_INIT -x GLOO_SOCKET_IFNAME -x LC_PEER_TIMEOUT_MS \
                "$py" "$here/python/bench_py.py" ddp --params "$params" --batch "$batch" \
                --rounds "$rounds" --codec onebit
        done
    fi
fi

echo
"$py" - "$res" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lat = [r for r in rows if r["bench"] == "latency"]
if lat:
    print("8-byte all-reduce, 4 ranks, loopback   C call    NumPy   torch   NumPy / C  torch / C")
    for r in lat:
        print("  round %d                           %7.1f us %6.1f us %6.1f us  %5.2fx     %5.2fx"
              % (r["round"], r["c_us"], r["numpy_us"], r["torch_us"], r["numpy_us"] / r["c_us"],
                 r["torch_us"] / r["c_us"]))
    print("  median ratio (target <= 1.3x)                              %5.2fx     %5.2fx"
          % (statistics.median(r["numpy_us"] / r["c_us"] for r in lat),
             statistics.median(r["torch_us"] / r["c_us"] for r in lat)))
ddp = [r for r in rows if r["bench"] == "ddp"]
for (scen, batch) in sorted({(r["scenario"], r["batch"]) for r in ddp}):
    rs = {r["impl"]: r for r in ddp if r["scenario"] == scen and r["batch"] == batch}
    g = rs["gloo"]["step_ms"]
    print("DDP step, %d parameters, 4 ranks, batch %d, %s" % (rs["gloo"]["params"], batch, scen))
    for impl, r in rs.items():
        extra = " (wire %.1fx less)" % r["wire_reduction"] if r.get("wire_reduction", 1) > 1 else ""
        print("  %-16s %8.1f ms   Gloo / this %5.2fx%s" % (impl, r["step_ms"], g / r["step_ms"], extra))
PY
echo "rows in $res"
