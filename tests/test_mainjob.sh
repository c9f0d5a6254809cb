#!/usr/bin/env bash
# The main job (perf/bench-compressed.sh, what scripts/bench.sh runs) end to
# end at a small size: on 4 emulated hosts it prints the table (a row per
# codec, each with a speedup over a baseline, none wrong), writes the rows,
# headline.md and headline.png, and leaves no namespace or process behind;
# Ctrl-C (SIGINT) in the middle of the benchmark stops it with status 130
# within seconds, again leaving nothing behind; run by an unprivileged user
# it says why and runs the same table on loopback.
#   test_mainjob.sh BUILD_DIR
# Exit 77 (skipped) without root, ip netns, mpirun or python3.
set -uo pipefail
BUILD=$1
JOB=$(cd "$(dirname "$0")/.." && pwd)/perf/bench-compressed.sh
[ "$(id -u)" = 0 ] || { echo "skip: needs root (network namespaces)"; exit 77; }
ip netns list >/dev/null 2>&1 || { echo "skip: ip netns does not work here"; exit 77; }
command -v mpirun >/dev/null || { echo "skip: mpirun not found"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 not found"; exit 77; }
prefix=lctmj$$
tmp=$(mktemp -d)
chmod 755 "$tmp"
leftovers() { ip netns list | awk '{print $1}' | grep "^$prefix-" || true; }
cleanup() {
    bash "$(dirname "$JOB")/net/topo.sh" down --prefix "$prefix" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
job=(bash "$JOB" --build-dir "$BUILD" --size 4M --iters 1 --prefix "$prefix")

# 1. The table on emulated hosts.
timeout -k 10 300 "${job[@]}" --out "$tmp/run" >"$tmp/run.out" 2>&1
rc=$?
rows=$(grep -cE '^(uncompressed|onebit|topk 1%|int8|bf16) .*[0-9.]+x ' "$tmp/run.out")
if [ $rc -eq 0 ] && [ "$rows" = 5 ] && ! grep -q WRONG "$tmp/run.out" &&
    grep -q '4 hosts, 1000 Mbit/s links' "$tmp/run.out"; then
    ok "main job on emulated hosts: 5 codec rows with speedups, none wrong"
else fail "main job: rc $rc, $rows codec rows"; sed 's/^/  /' "$tmp/run.out"; fi
if [ -s "$tmp/run/results.jsonl" ] && [ -s "$tmp/run/headline.md" ] &&
    { ! command -v gnuplot >/dev/null || [ -s "$tmp/run/headline.png" ]; }; then
    ok "rows, headline.md and headline.png written"
else fail "missing output files: $(ls "$tmp/run" 2>&1)"; fi
# % of link bound is a number on every Laconic row (the link rate is known).
if [ "$(grep -cE '^(uncompressed|onebit|topk 1%|int8|bf16) .*[0-9.]+%$' "$tmp/run.out")" = 5 ]; then
    ok "% of link bound on every row"
else fail "% of link bound missing"; fi
if [ -z "$(leftovers)" ] && ! pgrep -f "lc-linkemu.*--host $prefix-" >/dev/null; then
    ok "no namespace or emulator left after the run"
else fail "left behind: $(leftovers)"; fi

# 2. Ctrl-C while lc-bench runs: SIGINT to the script (not ignored, as it is
# in a background job of a script), as a terminal's Ctrl-C would deliver it.
python3 - "$tmp/int.out" "$prefix" "${job[@]}" --out "$tmp/int" <<'PY'
import os, signal, subprocess, sys, time
out, prefix, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "w") as f:
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    # Wait for the ranks: lc-bench processes inside our namespaces.
    while time.time() < deadline and p.poll() is None:
        ns = subprocess.run(["ip", "netns", "pids", prefix + "-h1"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, universal_newlines=True).stdout.split()
        if any("lc-bench" in open("/proc/%s/cmdline" % q, "rb").read().decode(errors="replace")
               for q in ns if os.path.exists("/proc/%s/cmdline" % q)):
            break
        time.sleep(0.2)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "hung"
    f.write("\n# rc %s after %.1f s\n" % (rc, time.time() - t0))
sys.exit(0 if rc == 130 else 1)
PY
rc=$?
if [ $rc -eq 0 ]; then ok "Ctrl-C: exit 130 ($(tail -1 "$tmp/int.out" | sed 's/^# //'))"; else
    fail "Ctrl-C did not stop the job with 130"; sed 's/^/  /' "$tmp/int.out"; fi
sleep 1
if [ -z "$(leftovers)" ] && ! pgrep -f "lc-linkemu.*--host $prefix-" >/dev/null &&
    ! pgrep -f "lc-bench.*--scenario emu-" >/dev/null; then
    ok "no namespace, emulator or rank left after Ctrl-C"
else fail "left behind after Ctrl-C: $(leftovers) $(pgrep -af lc-bench)"; fi

# 3. Without root: the reason, then the same table on loopback.
if command -v runuser >/dev/null && id nobody >/dev/null 2>&1 &&
    runuser -u nobody -- test -x "$BUILD/perf/lc-bench" 2>/dev/null; then
    mkdir "$tmp/lo" && chown nobody "$tmp/lo"
    timeout -k 10 300 runuser -u nobody -- env HOME="$tmp" "${job[@]}" --size 1M \
        --out "$tmp/lo" >"$tmp/lo.out" 2>&1
    rc=$?
    rows=$(grep -cE '^(uncompressed|onebit|topk 1%|int8|bf16) .*[0-9.]+x ' "$tmp/lo.out")
    if [ $rc -eq 0 ] && grep -q 'not root: running on this host.s loopback' "$tmp/lo.out" &&
        grep -q 'TCP loopback' "$tmp/lo.out" && [ "$rows" = 5 ]; then
        ok "unprivileged: says why, runs the table on loopback"
    else fail "unprivileged run: rc $rc, $rows rows"; sed 's/^/  /' "$tmp/lo.out"; fi
else
    echo "# skipped the unprivileged run: no runuser/nobody, or the build is not readable by nobody"
fi

echo "# $n checks, $fails failed"
[ $fails -eq 0 ]
