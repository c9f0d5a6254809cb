#!/usr/bin/env bash
# lc-bench end to end: 3 ranks under lcrun, a few small sizes of all-reduce,
# all-to-all and the skewed all-to-all alltoallv (against Gloo when the Gloo
# baseline is built), with --link-mbps/--scenario/--json; python3 then checks
# that every JSON row parses, has every field, wrong == 0, positive bound_us
# and pct_bound, and that the expected impl/algo rows are there. With a codec
# (--codec onebit and bf16, all-reduce and all-to-all at 64 KiB): Laconic's
# rows name the codec, have ratio > 20 (onebit) or about 2 (bf16), relerr
# within the codec's bound and the encode/decode/wire times, the baselines'
# rows stay uncompressed, and reduce_scatter says once on stderr that it runs
# uncompressed. Also checks that
# the Gloo store directory is removed (also when rank 0 is stopped by SIGTERM
# while the store is in use), that a NaN result (injected with
# LC_BENCH_FAULT=nan) counts as wrong with relerr nan/null, and that without
# Gloo --baseline gloo fails with a clear message. --codec LIST (several
# codecs in one run, one Laconic row each, the baselines once) and
# perf/headline.py's table, Markdown and chart from its rows.
#   test_bench.sh LCRUN LC_BENCH HAVE_GLOO(0|1)
# Exit 77 (skipped) without python3.
set -uo pipefail
LCRUN=$1 BENCH=$2 GLOO=${3:-0}
command -v python3 >/dev/null || { echo "skip: python3 not found"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }

# bench NAME ARGS...: one 3-rank lc-bench run (bounded), rows appended to $tmp/rows.jsonl.
bench() {
    local name=$1; shift
    timeout -k 5 150 "$LCRUN" -n 3 --timeout 120 -- "$BENCH" -n 5 -w 2 --link-mbps 1000 \
        --scenario test --json "$tmp/rows.jsonl" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    local rc=$?
    if [ $rc -eq 0 ]; then ok "$name runs"; else
        fail "$name: rc $rc"; sed 's/^/  out: /' "$tmp/$name.out"; sed 's/^/  err: /' "$tmp/$name.err"; fi
}

mkdir "$tmp/store"
if [ "$GLOO" = 1 ]; then
    bench allreduce -b 1K -e 64K -f 8 --baseline gloo --gloo-store "$tmp/store"
    bench alltoall --coll alltoall -b 1K -e 64K -f 8 --baseline gloo --gloo-store "$tmp/store"
    # Uneven blocks (one empty block per rank), float and int64, every element checked.
    bench alltoallv --coll alltoallv -b 1K -e 64K -f 8 --baseline gloo --gloo-store "$tmp/store"
    bench alltoallv_i64 --coll alltoallv -d int64 -b 4K -e 4K --baseline gloo \
        --gloo-store "$tmp/store"
    # A lossy codec against the (uncompressed) Gloo baseline, on the same data.
    bench codec_a2a_onebit --coll alltoall -b 64K -e 64K --codec onebit --baseline gloo \
        --gloo-store "$tmp/store"
    if [ -z "$(ls -A "$tmp/store")" ]; then ok "Gloo store removed"; else
        fail "Gloo store left behind: $(ls -A "$tmp/store")"; fi
    # SIGTERM while rank 0 owns the store: ranks 1 and 2 are pointed at another
    # (empty) store root, whose rendezvous directory does not exist, so they
    # fail at once; lcrun then sends SIGTERM to rank 0, which is waiting in
    # the rendezvous for them. Its handler must remove the store.
    mkdir "$tmp/sig0" "$tmp/sig1"
    timeout -k 5 60 "$LCRUN" -n 3 --timeout 50 -- bash -c \
        'if [ "$LC_RANK" = 0 ]; then s=$1; else s=$2; fi; shift 2; exec "$0" "$@" --gloo-store "$s"' \
        "$BENCH" "$tmp/sig0" "$tmp/sig1" -b 1K -e 1K -n 2 -w 1 --baseline gloo \
        >"$tmp/sig.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'rendezvous' "$tmp/sig.out" \
        && [ -z "$(ls -A "$tmp/sig0")" ]; then
        ok "Gloo store removed when rank 0 gets SIGTERM (rc $rc)"
    else
        fail "Gloo store after SIGTERM: rc $rc, left: $(ls -A "$tmp/sig0")"; sed 's/^/  /' "$tmp/sig.out"
    fi
else
    bench allreduce -b 1K -e 64K -f 8
    bench alltoall --coll alltoall -b 1K -e 64K -f 8
    bench alltoallv --coll alltoallv -b 1K -e 64K -f 8
    bench alltoallv_i64 --coll alltoallv -d int64 -b 4K -e 4K
    bench codec_a2a_onebit --coll alltoall -b 64K -e 64K --codec onebit
    timeout -k 5 60 "$LCRUN" -n 2 --timeout 50 -- "$BENCH" --baseline gloo >"$tmp/ng.out" 2>&1
    if [ $? -ne 0 ] && grep -q "built without Gloo" "$tmp/ng.out"; then
        ok "--baseline gloo without Gloo fails clearly"
    else fail "--baseline gloo without Gloo: no clear failure"; cat "$tmp/ng.out"; fi
fi

# Codecs (Laconic's rows compressed, error feedback on for onebit), checked below.
bench codec_ar_onebit -b 64K -e 64K --codec onebit
bench codec_ar_bf16 -b 64K -e 64K --codec bf16
bench codec_a2a_bf16 --coll alltoall -b 64K -e 64K --codec bf16
# reduce_scatter takes no codec: it runs uncompressed, with one note on stderr.
bench codec_rs --coll reduce_scatter -b 64K -e 64K --codec onebit
if [ "$(grep -c "reduce_scatter takes no codec" "$tmp/codec_rs.err")" = 1 ]; then
    ok "codec: reduce_scatter runs uncompressed, said once on stderr"
else fail "codec: no single 'reduce_scatter takes no codec' note"; cat "$tmp/codec_rs.err"; fi

# Several codecs in one run (--codec LIST, the main job's form): one Laconic
# row per codec at each size, the baselines once, every row on the same
# gradient-like data; then perf/headline.py's table (and chart) from them.
HEADLINE=$(dirname "$0")/../perf/headline.py
multi=(-b 64K -e 64K --coded-warmup 3 --codec none,onebit,bf16)
[ "$GLOO" = 1 ] && multi+=(--baseline gloo --gloo-store "$tmp/store")
timeout -k 5 150 "$LCRUN" -n 3 --timeout 120 -- "$BENCH" -n 3 -w 1 --link-mbps 1000 \
    --scenario test --json "$tmp/multi.jsonl" "${multi[@]}" >"$tmp/multi.out" 2>"$tmp/multi.err"
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/multi.jsonl" "$GLOO" <<'PY'; then ok "--codec LIST: one row per codec, baselines once"; else
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
lc = [r for r in rows if r["impl"] == "lc"]
assert [r["codec"] for r in lc] == ["none", "onebit", "bf16"], [r["codec"] for r in lc]
base = [r for r in rows if r["impl"] != "lc"]
assert len(base) == (3 if sys.argv[2] == "1" else 0), base
for r in rows:
    assert r["data"] == "gradient" and r["wrong"] == 0, r
    assert r["relerr"] is not None, r
none, onebit, bf16 = lc
assert none["ratio"] == 1 and none["relerr_bound"] == 1e-5 and none["relerr"] <= 1e-5, none
assert none["ef"] == 0 and onebit["ef"] == 1 and bf16["ef"] == 0, lc
assert 20 < onebit["ratio"] < 40 and 0 < onebit["relerr"] <= 1.0, onebit
assert 1.9 < bf16["ratio"] < 2.1 and 0 < bf16["relerr"] <= 0.02, bf16
PY
    fail "--codec LIST (rc $rc)"; sed 's/^/  out: /' "$tmp/multi.out"; sed 's/^/  err: /' "$tmp/multi.err"; fi
python3 "$HEADLINE" "$tmp/multi.jsonl" --md "$tmp/headline.md" --png "$tmp/headline.png" \
    >"$tmp/headline.out" 2>&1
rc=$?
if [ "$GLOO" = 1 ]; then
    # uncompressed, onebit and bf16 each with a speedup over the best Gloo row.
    if [ $rc -eq 0 ] && [ "$(grep -cE '^(uncompressed|onebit|bf16) .* Gloo (ring|hd|bcube) .*[0-9.]+x ' \
        "$tmp/headline.out")" = 3 ] && grep -q '^| onebit | ' "$tmp/headline.md" &&
        { ! command -v gnuplot >/dev/null || [ -s "$tmp/headline.png" ]; }; then
        ok "headline.py: table, Markdown and chart"
    else fail "headline.py (rc $rc)"; sed 's/^/  /' "$tmp/headline.out"; fi
elif [ $rc -eq 1 ] && grep -q 'need Laconic and baseline' "$tmp/headline.out"; then
    ok "headline.py without a baseline row fails clearly"
else fail "headline.py without a baseline: rc $rc"; sed 's/^/  /' "$tmp/headline.out"; fi
"$BENCH" --coded-warmup -2 >"$tmp/cw.out" 2>&1
if [ $? -ne 0 ] && grep -q 'coded-warmup' "$tmp/cw.out"; then ok "--coded-warmup -2 refused"; else
    fail "--coded-warmup -2 accepted"; cat "$tmp/cw.out"; fi

# A NaN in the result: LC_BENCH_FAULT=nan makes rank 0 overwrite the first
# output element with NaN before the check. It must count as wrong, and the
# worst relative error must be NaN: "nan" in the table, null in the JSON.
LC_BENCH_FAULT=nan timeout -k 5 60 "$LCRUN" -n 3 --timeout 50 -- "$BENCH" -b 1K -e 1K -n 2 -w 1 \
    --json "$tmp/nan.jsonl" >"$tmp/nan.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && awk '$1 == 1024 && $5 == "lc" && $10 == 1 && $11 == "nan" { f = 1 } END { exit !f }' \
    "$tmp/nan.out"; then ok "NaN result: table shows #wrong 1, relerr nan"; else
    fail "NaN result in the table (rc $rc)"; sed 's/^/  /' "$tmp/nan.out"; fi
if python3 - "$tmp/nan.jsonl" <<'PY'; then ok "NaN result: JSON wrong 1, relerr null"; else fail "NaN result in the JSON"; fi
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(rows) == 1, rows
assert rows[0]["wrong"] == 1 and rows[0]["relerr"] is None, rows[0]
PY
# The same with a lossy codec (relative L2 error instead of per-element).
LC_BENCH_FAULT=nan timeout -k 5 60 "$LCRUN" -n 3 --timeout 50 -- "$BENCH" -b 64K -e 64K -n 2 -w 1 \
    --codec bf16 --json "$tmp/nanc.jsonl" >"$tmp/nanc.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && python3 - "$tmp/nanc.jsonl" <<'PY'; then ok "NaN result with a codec: wrong 1, relerr null"; else
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(rows) == 1, rows
assert rows[0]["codec"] == "bf16" and rows[0]["wrong"] == 1 and rows[0]["relerr"] is None, rows[0]
PY
    fail "NaN result with a codec (rc $rc)"; sed 's/^/  /' "$tmp/nanc.out"; fi

# Check the rows.
if python3 - "$tmp/rows.jsonl" "$GLOO" <<'PY'; then ok "JSON rows"; else fail "JSON rows"; fi
import json, sys
path, gloo = sys.argv[1], sys.argv[2] == "1"
fields = ["kind", "impl", "coll", "algo", "codec", "bytes", "count", "dtype", "op", "nranks",
          "time_us", "algbw_gbps", "busbw_gbps", "wire_bytes", "ratio", "relerr", "wrong",
          "iters", "rss_mib", "scenario", "link_mbps", "bound_us", "pct_bound",
          "encode_us", "decode_us", "wire_us", "ef", "relerr_bound", "data"]
bad = 0
def err(msg):
    global bad
    bad += 1
    print("  " + msg)
def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)
seen = set()
with open(path) as f:
    lines = f.read().splitlines()
if not lines:
    err("no rows")
for k, line in enumerate(lines, 1):
    try:
        row = json.loads(line)
    except ValueError as e:
        err("line %d does not parse: %s" % (k, e))
        continue
    missing = [x for x in fields if x not in row]
    if missing:
        err("line %d lacks %s" % (k, missing))
        continue
    where = "line %d (%s %s %s %d B)" % (k, row["coll"], row["impl"], row["algo"], row["bytes"])
    if row["kind"] != "coll": err("%s: kind %r" % (where, row["kind"]))
    if row["scenario"] != "test": err("%s: scenario %r" % (where, row["scenario"]))
    if row["link_mbps"] != 1000: err("%s: link_mbps %r" % (where, row["link_mbps"]))
    if row["nranks"] != 3: err("%s: nranks %r" % (where, row["nranks"]))
    if row["wrong"] != 0: err("%s: %r wrong elements" % (where, row["wrong"]))
    for x in ("bound_us", "pct_bound", "time_us"):
        if not num(row[x]) or not row[x] > 0: err("%s: %s = %r" % (where, x, row[x]))
    if num(row["bound_us"]) and num(row["pct_bound"]) and num(row["time_us"]):
        if abs(row["pct_bound"] - 100 * row["bound_us"] / row["time_us"]) > 0.01 * row["pct_bound"] + 1e-3:
            err("%s: pct_bound %r != 100 x bound_us / time_us" % (where, row["pct_bound"]))
    if row["coll"] == "alltoallv" and row["count"] * {"float": 4, "int64": 8}.get(row["dtype"], 0) != row["bytes"]:
        err("%s: count %r does not match the size" % (where, row["count"]))
    # Codec columns: Laconic's compressed rows name the codec and are checked
    # against its bound (test with -c 1: relerr is a number); the others are
    # uncompressed ("none"), baselines without Laconic's times.
    codec = row["codec"]
    if row["impl"] != "lc" and codec != "none":
        err("%s: a baseline row with codec %r" % (where, codec))
    if row["impl"] != "lc" and any(row[x] is not None for x in ("encode_us", "decode_us", "wire_us")):
        err("%s: a baseline row with Laconic's times" % where)
    if row["impl"] == "lc" and not all(num(row[x]) and row[x] >= 0
                                       for x in ("encode_us", "decode_us", "wire_us")):
        err("%s: encode/decode/wire_us %r" % (where, [row[x] for x in ("encode_us", "decode_us", "wire_us")]))
    if codec != "none":
        where += " " + codec
        want_ratio = {"onebit": (20, 40), "bf16": (1.9, 2.1)}.get(codec)
        if want_ratio is None:
            err("%s: unexpected codec" % where)
        elif not (num(row["ratio"]) and want_ratio[0] < row["ratio"] < want_ratio[1]):
            err("%s: ratio %r not in %r" % (where, row["ratio"], want_ratio))
        bound = {"onebit": 1.0, "bf16": 0.02}.get(codec)
        if row["relerr_bound"] != bound:
            err("%s: relerr_bound %r != %r" % (where, row["relerr_bound"], bound))
        if not (num(row["relerr"]) and 0 < row["relerr"] <= (bound or 0)):
            err("%s: relerr %r" % (where, row["relerr"]))
        if row["data"] != "gradient" or row["ef"] != (1 if codec == "onebit" else 0):
            err("%s: data %r, ef %r" % (where, row["data"], row["ef"]))
        if row["algo"] != {"allreduce": "twophase", "alltoall": "pairwise"}.get(row["coll"]):
            err("%s: algo %r" % (where, row["algo"]))
        if not row["encode_us"] > 0 or not row["decode_us"] > 0:
            err("%s: encode_us %r decode_us %r" % (where, row["encode_us"], row["decode_us"]))
    seen.add((row["coll"], row["impl"], row["algo"] if row["impl"] == "gloo" else "*", codec,
              row["bytes"]))
want = set()
for b in (1024, 8192, 65536):
    want.add(("allreduce", "lc", "*", "none", b))
    # 3 ranks: alltoall sizes are multiples of 3 elements, alltoallv's of 3 (= 3 x 2 / 2)
    want.add(("alltoall", "lc", "*", "none", b - b % 12))
    want.add(("alltoallv", "lc", "*", "none", b - b % 12))
    if gloo:
        for a in ("ring", "hd", "bcube"):
            want.add(("allreduce", "gloo", a, "none", b))
        want.add(("alltoall", "gloo", "-", "none", b - b % 12))
        want.add(("alltoallv", "gloo", "-", "none", b - b % 12))
want.add(("alltoallv", "lc", "*", "none", 4096 - 4096 % 24))  # the int64 run
if gloo:
    want.add(("alltoallv", "gloo", "-", "none", 4096 - 4096 % 24))
    want.add(("alltoall", "gloo", "-", "none", 65532))  # in the codec run: uncompressed
for c in ("onebit", "bf16"):
    want.add(("allreduce", "lc", "*", c, 65536))
    want.add(("alltoall", "lc", "*", c, 65532))
want.add(("reduce_scatter", "lc", "*", "none", 65532))  # --codec onebit: uncompressed
for w in sorted(want - seen, key=str):
    err("missing row %s" % (w,))
print("  %d rows, %d problems" % (len(lines), bad))
sys.exit(1 if bad else 0)
PY

echo "# $n checks, $fails failed"
[ $fails -eq 0 ]
