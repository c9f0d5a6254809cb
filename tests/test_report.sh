#!/usr/bin/env bash
# perf/report.py on a synthetic results.jsonl: 2 scenarios x 3 variants x 3 sizes
# of allreduce, probes (one missing its rate), overlap, codec and meta rows, and a
# malformed line. Checks the sections of summary.md, a speedup chosen to be exact
# (wan 16 MiB: mpi 200 ms / lc 100 ms = 2.00x), the flagged probe miss and wrong
# row, that wrong rows never make the speedup (scenario "mix": a fast wrong lc
# and a fast wrong baseline row), the "(!)" marker and footnote of a %bound
# above 100, the overlap table's strict column, the PNG plots (skipped, with a message, without gnuplot), that no temporary
# files are left, the run without gnuplot, and the failures on a missing or empty
# results file. Skipped (exit 77) without python3.
#   test_report.sh [PYTHON]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
report=$here/perf/report.py
PY=${1:-}
if [ -z "$PY" ]; then PY=$(command -v python3 || true); fi
if [ -z "$PY" ] || ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null; then
    echo "SKIP: test_report needs python3 (3.7 or later)"; exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lc-test-report.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# report.py's own temporary files go here, so that leftovers can be seen.
mkdir "$tmp/tmpdir"
export TMPDIR=$tmp/tmpdir

fails=0 n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
has()  { grep -qF -- "$1" "$2"; }

# --- synthetic results
res=$tmp/run
mkdir "$res"
{
    echo '{"kind":"meta","date":"2024-05-01T12:00:00Z","host":"testhost","mode":"quick","commit":"abc1234","elapsed_s":95.5}'
    echo '{"kind":"probe","scenario":"lan","hosts":4,"target_rtt_ms":0,"target_mbit":10000,"rtt_ms":0.05,"rate_mbit":9800}'
    echo '{"kind":"probe","scenario":"wan","hosts":4,"target_rtt_ms":40.0,"target_mbit":1000,"rtt_ms":40.7,"rate_mbit":900.0}'
    echo ''
    echo '{"kind":"coll", "scenario":"wan", "impl":"lc", "time_us": oops'
    echo '{"kind":"future-kind","whatever":1}'
    # scenario size lc_us mpi_us gloo_us  (wan 16 MiB: mpi/lc = 2.00; lan 16 MiB: gloo/lc = 1.25)
    while read -r sc mbps bytes lc mpi gloo; do
        for v in "lc ring $lc" "mpi - $mpi" "gloo ring $gloo"; do
            set -- $v
            wrong=0
            if [ "$sc/$1/$bytes" = lan/gloo/1048576 ]; then wrong=3; fi
            bw=$(awk -v b="$bytes" -v t="$3" 'BEGIN { printf "%.5f", b / t / 1e3 * 1.5 }')
            bound=$(awk -v b="$bytes" -v m="$mbps" 'BEGIN { printf "%.3f", b * 8 * 0.5 / m }')
            pct=$(awk -v b="$bound" -v t="$3" 'BEGIN { printf "%.2f", 100 * b / t }')
            printf '{"kind":"coll","scenario":"%s","impl":"%s","coll":"allreduce","algo":"%s","codec":"none","bytes":%s,"count":%s,"dtype":"float","op":"sum","nranks":4,"time_us":%s,"algbw_gbps":0,"busbw_gbps":%s,"wire_bytes":%s,"ratio":1,"relerr":0,"wrong":%s,"iters":10,"rss_mib":50,"link_mbps":%s,"bound_us":%s,"pct_bound":%s}\n' \
                "$sc" "$1" "$2" "$bytes" $((bytes / 4)) "$3" "$bw" "$bytes" "$wrong" "$mbps" "$bound" "$pct"
        done
    done <<'EOF'
lan 10000 1048576 1500 2500 1800
lan 10000 4194304 4000 7000 5000
lan 10000 16777216 16000 24000 20000
wan 1000 1048576 60000 70000 90000
wan 1000 4194304 70000 100000 120000
wan 1000 16777216 100000 200000 250000
EOF
    # mix, 1 MiB: lc/tree (0.5 ms) and gloo/ring (0.8 ms) are fast but wrong; the
    # comparison must be lc/ring 1 ms against mpi 2 ms = 2.00x. lc/ring's %bound is 118.94.
    for v in "lc ring 1000 0 118.94" "lc tree 500 5 237.88" "mpi - 2000 0 59.47" "gloo ring 800 1 148.68"; do
        set -- $v
        printf '{"kind":"coll","scenario":"mix","impl":"%s","coll":"allreduce","algo":"%s","codec":"none","bytes":1048576,"nranks":4,"time_us":%s,"busbw_gbps":1,"wrong":%s,"link_mbps":5000,"bound_us":1189.4,"pct_bound":%s}\n' "$@"
    done
    echo '{"kind":"overlap","scenario":"wan","impl":"lc","coll":"allreduce","bytes":16777216,"nranks":4,"t_pure_us":100000,"t_compute_us":80000,"t_overall_us":110000,"overlap_pct":87.5,"wrong":0,"iters":5,"t_compute_alone_us":75000,"t_exposed_us":12500,"overlap_strict_pct":65.0}'
    echo '{"kind":"overlap","scenario":"wan","impl":"mpi+test","coll":"allreduce","bytes":16777216,"nranks":4,"t_pure_us":200000,"t_compute_us":80000,"t_overall_us":270000,"overlap_pct":12.5,"wrong":0,"iters":5}'
    for d in gaussian gradient; do
        echo '{"kind":"codec","codec":"memcpy","op":"copy","data":"'$d'","bytes":67108864,"gbps":10.0,"vs_memcpy":1,"ratio":1,"relerr":0}'
        echo '{"kind":"codec","codec":"onebit","op":"encode+ef","data":"'$d'","bytes":67108864,"time_ms":5,"gbps":12.5,"vs_memcpy":1.25,"ratio":31.5,"relerr":0.61}'
        echo '{"kind":"codec","codec":"onebit","op":"decode","data":"'$d'","bytes":67108864,"time_ms":5,"gbps":20,"vs_memcpy":2.0,"ratio":31.5,"relerr":0.61}'
        echo '{"kind":"codec","codec":"topk:0.01","op":"encode","data":"'$d'","bytes":67108864,"time_ms":5,"gbps":3,"vs_memcpy":0.3,"ratio":50.0,"relerr":0.9}'
        echo '{"kind":"codec","codec":"int8","op":"encode","data":"'$d'","bytes":67108864,"time_ms":5,"gbps":9,"vs_memcpy":0.9,"ratio":3.97,"relerr":0.0042}'
        echo '{"kind":"codec","codec":"int8+zstd:force","op":"zstd-stage","data":"'$d'","bytes":67108864,"time_ms":5,"gbps":2,"vs_memcpy":0.2,"ratio":1.3,"relerr":0}'
    done
} >"$res/results.jsonl"

# --- a full run
"$PY" "$report" "$res" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then ok "report.py exits 0"; else fail "report.py exited $rc: $(cat "$tmp/err")"; fi
sum=$res/summary.md
if [ -s "$sum" ]; then ok "summary.md written"; else fail "no summary.md"; echo "1..$n"; exit 1; fi
for s in "## Links" "## Collectives" "## Headline" "## Overlap" "## Codecs" "## Plots"; do
    if has "$s" "$sum"; then ok "section '$s'"; else fail "no section '$s'"; fi
done
if has "testhost" "$sum" && has "abc1234" "$sum" && has "quick" "$sum"; then ok "meta header"; else fail "meta header missing"; fi
if grep -q ':5: skipped malformed line' "$tmp/err"; then ok "malformed line 5 reported on stderr"; else fail "malformed line not reported: $(cat "$tmp/err")"; fi
if has "1 malformed line" "$sum"; then ok "malformed line counted in summary.md"; else fail "malformed line not counted"; fi
# wan, 16 MiB: mpi 200 ms / lc 100 ms, in the table and the headline
if grep -E '^\| 16 MiB \|.*\| 2\.00x \(mpi\) \|' "$sum" >/dev/null; then ok "wan 16 MiB speedup 2.00x (mpi)"; else fail "wan speedup 2.00x (mpi) not found"; fi
if grep -E '^\| wan \| 16 MiB \| 100 \|.*\| mpi \| 200 \| \*\*2\.00x\*\* \|' "$sum" >/dev/null; then ok "headline wan 2.00x"; else fail "headline row for wan wrong"; fi
# lan, 16 MiB: best baseline is gloo/ring at 20 ms, lc 16 ms -> 1.25x
if grep -E '^\| lan \| 16 MiB \|.*\| gloo/ring \| 20\.0 \| \*\*1\.25x\*\* \|' "$sum" >/dev/null; then ok "headline lan 1.25x (gloo/ring)"; else fail "headline row for lan wrong"; fi
# wan 4 MiB: 100 ms / 70 ms = 1.43x
if grep -E '^\| 4 MiB \|.*\| 1\.43x \(mpi\) \|' "$sum" >/dev/null; then ok "wan 4 MiB speedup 1.43x"; else fail "wan 4 MiB speedup 1.43x not found"; fi
if grep -E '^\| wan \|.*\*\*MISS\*\* \(rate -10\.0%\)' "$sum" >/dev/null; then ok "wan rate miss flagged"; else fail "wan rate miss not flagged"; fi
if grep -E '^\| lan \|.*\| ok \|$' "$sum" >/dev/null; then ok "lan probe ok"; else fail "lan probe not ok"; fi
if grep -E '^\| 1 MiB \|.*\*\*WRONG\*\* \(gloo/ring: 3\)' "$sum" >/dev/null && has "WARNING: 3 row(s)" "$sum"; then
    ok "wrong row flagged"; else fail "wrong row not flagged"; fi
if grep -E '^\| wan \| allreduce \| 16 MiB \| mpi\+test \| 200 \|.*\| 12\.5% \| – \| ok \|$' "$sum" >/dev/null; then ok "overlap row"; else fail "overlap row missing"; fi
if grep -E '^\| scenario \|.*\| overlap \| strict \| check \|$' "$sum" >/dev/null \
    && grep -E '^\| wan \| allreduce \| 16 MiB \| lc \| 100 \| 80\.0 \| 110 \| 87\.5% \| 65\.0% \| ok \|$' "$sum" >/dev/null; then
    ok "overlap strict column"; else fail "overlap strict column missing"; fi
# wrong rows are never the speedup: lan 1 MiB (gloo/ring 1.8 ms wrong) -> mpi 2.5 / 1.5 = 1.67x
if grep -E '^\| 1 MiB \|.*\| 1\.67x \(mpi\) \|' "$sum" >/dev/null; then ok "lan 1 MiB: wrong gloo/ring skipped (1.67x mpi)"
else fail "lan 1 MiB: speedup not against mpi 1.67x"; fi
if grep -E '^\| 1 MiB \|.*\| 118\.9% \(!\) \(lc/ring\) \| 2\.00x \(mpi vs lc/ring\) \| \*\*WRONG\*\* \(lc/tree: 5, gloo/ring: 1\) \|$' "$sum" >/dev/null
then ok "mix: wrong lc/tree and gloo/ring skipped in the table"; else fail "mix table row wrong"; grep -F '| 1 MiB |' "$sum"; fi
if grep -E '^\| mix \| 1 MiB \| lc/ring 1\.00 \| 118\.9% \(!\) \| mpi \| 2\.00 \| \*\*2\.00x\*\* \|$' "$sum" >/dev/null
then ok "mix: headline is lc/ring vs mpi 2.00x"; else fail "mix headline wrong"; grep -F '| mix |' "$sum"; fi
if has "above 100%: the measured link rate B underestimates the link" "$sum"; then ok "%bound > 100 footnote"
else fail "%bound > 100 footnote missing"; fi
# only mix's lc/ring %bound (table and headline) is above 100
if [ "$(grep -c '[0-9]% (!)' "$sum")" -eq 2 ]; then ok "(!) only above 100%"
else fail "(!) not exactly on the two cells above 100%"; grep -F '(!)' "$sum"; fi
if grep -E '^\| onebit \| 31\.50x \| 6\.10e-01 \| 12\.5 \| 1\.25x \| 2\.00x \|' "$sum" >/dev/null; then ok "codec row"; else fail "codec row missing"; fi
if grep -E '^\| int8 \|.*\| 1\.30x \|$' "$sum" >/dev/null; then ok "codec zstd stage"; else fail "codec zstd stage missing"; fi
if has "Data: gradient." "$sum"; then ok "codecs use gradient data"; else fail "codecs not on gradient data"; fi

pngs="busbw_lan_allreduce.png busbw_wan_allreduce.png speedup_vs_bandwidth.png ratio_vs_error.png"
if command -v gnuplot >/dev/null; then
    for p in $pngs; do
        f=$res/plots/$p
        if [ -s "$f" ] && [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
            ok "plots/$p is a PNG"
        else
            fail "plots/$p missing or not a PNG"
        fi
        if has "(plots/$p)" "$sum"; then ok "summary links plots/$p"; else fail "summary does not link plots/$p"; fi
    done
else
    echo "# gnuplot not found: PNG checks skipped"
fi
if [ -z "$(ls -A "$TMPDIR")" ]; then ok "no temporary files left"; else fail "left in TMPDIR: $(ls -A "$TMPDIR")"; fi
extra=$(cd "$res" && find . -type f ! -name results.jsonl ! -name summary.md ! -path './plots/*.png')
if [ -z "$extra" ]; then ok "no stray files in the results directory"; else fail "stray files: $extra"; fi

# --- without gnuplot: summary.md anyway, plots skipped (said in it and on stderr)
res2=$tmp/nognuplot
mkdir "$res2"
cp "$res/results.jsonl" "$res2/"
# The interpreter itself, not a wrapper that needs PATH (pyenv's shims do).
pyexe=$("$PY" -c 'import sys; print(sys.executable)')
PATH=/nonexistent "$pyexe" "$report" "$res2" >/dev/null 2>"$tmp/err2"
rc=$?
if [ $rc -eq 0 ] && [ -s "$res2/summary.md" ]; then ok "no gnuplot: exit 0 and summary.md"; else fail "no gnuplot: exit $rc"; fi
if grep -q 'plots were skipped' "$tmp/err2" && has "plots were skipped" "$res2/summary.md"; then
    ok "no gnuplot: said on stderr and in summary.md"; else fail "no gnuplot: not said"; fi
if [ ! -e "$res2/plots" ] || [ -z "$(ls -A "$res2/plots")" ]; then ok "no gnuplot: no plots"; else fail "no gnuplot: plots made"; fi

# --- failures: missing file, empty file, nothing usable
bad=$tmp/bad
mkdir "$bad"
expect_fail() { # what: the run must fail with a message naming results.jsonl
    "$PY" "$report" "$bad" >/dev/null 2>"$tmp/errb"
    local rc=$?
    if [ $rc -ne 0 ] && grep -q 'results.jsonl' "$tmp/errb" && [ ! -e "$bad/summary.md" ]; then
        ok "$1: exit $rc ($(tail -n 1 "$tmp/errb"))"
    else
        fail "$1: exit $rc, stderr: $(cat "$tmp/errb")"
    fi
}
expect_fail "missing results.jsonl"
: >"$bad/results.jsonl"
expect_fail "empty results.jsonl"
printf '\n{"kind":"meta","host":"x"}\nnot json\n{"kind":"coll","scenario":"a"}\n' >"$bad/results.jsonl"
expect_fail "no usable rows"
"$PY" "$report" >/dev/null 2>&1
rc=$?
if [ $rc -eq 2 ]; then ok "no argument: usage, exit 2"; else fail "no argument: exit $rc"; fi
if "$PY" "$report" "$tmp/does-not-exist" >/dev/null 2>&1; then fail "missing directory accepted"; else ok "missing directory rejected"; fi
if [ -z "$(ls -A "$TMPDIR")" ]; then ok "no temporary files left at the end"; else fail "left in TMPDIR: $(ls -A "$TMPDIR")"; fi

echo "1..$n"
[ $fails -eq 0 ]
