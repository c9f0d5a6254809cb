#!/usr/bin/env bash
# lc-overlap (perf/lc-overlap.c) end to end: 2 ranks under lcrun on two small
# sizes with --json; every JSON line must parse and carry the documented
# fields, with wrong == 0, positive times, numeric overlap_pct and
# overlap_strict_pct that follow their documented formulas (OSU: from the
# per-iteration t_exposed; strict: from t_compute_alone), and the table's
# strict(%) column. Also the
# usage paths (--help, a bad --baseline). Every run is bounded by timeout(1).
#   test_overlap.sh LCRUN LC_OVERLAP
set -uo pipefail
LCRUN=$1 OVL=$2
if ! command -v python3 >/dev/null; then echo "SKIP: python3 not found"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 n=0
ok()   { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }

# --- usage
if timeout -k 5 10 "$OVL" --help >"$tmp/help" 2>&1 && grep -q "overlap" "$tmp/help"; then
    ok "--help prints usage"; else fail "--help"; cat "$tmp/help"; fi
timeout -k 5 10 "$OVL" --baseline nccl >"$tmp/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "baseline" "$tmp/out"; then ok "bad --baseline is refused (rc $rc)"
else fail "bad --baseline: rc $rc"; cat "$tmp/out"; fi

# --- a real run: 2 ranks, 64 KiB and 256 KiB
timeout -k 5 90 "$LCRUN" -n 2 --timeout 80 -- "$OVL" -b 64K -e 256K -f 4 -n 3 -w 1 \
    --scenario 'test "q"' --json "$tmp/out.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then ok "lc-overlap under lcrun -n 2 (rc 0)"; else
    fail "lc-overlap under lcrun -n 2: rc $rc"
    sed 's/^/  out: /' "$tmp/out"; sed 's/^/  err: /' "$tmp/err"
fi
cat "$tmp/out"
if grep -q 'strict(%)' "$tmp/out" && [ "$(awk '!/^#/ && NF == 8' "$tmp/out" | wc -l)" -eq 2 ]; then
    ok "table has the strict(%) column"; else fail "table: no strict(%) column or rows of 8 fields"; fi
if python3 - "$tmp/out.json" <<'PY'; then ok "JSON lines parse and are sane"; else fail "JSON check"; fi
import json, math, numbers, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 2, f"want 2 rows, got {len(lines)}"
want = {"kind", "scenario", "impl", "coll", "bytes", "nranks", "t_pure_us", "t_compute_us",
        "t_overall_us", "overlap_pct", "wrong", "iters", "t_compute_alone_us", "t_exposed_us",
        "overlap_strict_pct"}
sizes = []
for l in lines:
    r = json.loads(l)
    missing = want - r.keys()
    assert not missing, f"missing {missing} in {l}"
    assert r["kind"] == "overlap" and r["coll"] == "allreduce" and r["impl"] == "lc", l
    assert r["scenario"] == 'test "q"', l
    assert r["nranks"] == 2 and r["iters"] == 3, l
    assert r["wrong"] == 0, f"wrong results: {l}"
    for k in ("t_pure_us", "t_compute_us", "t_overall_us", "t_compute_alone_us"):
        assert isinstance(r[k], numbers.Real) and r[k] > 0, f"{k} not positive: {l}"
    for k in ("overlap_pct", "overlap_strict_pct", "t_exposed_us"):
        o = r[k]
        assert isinstance(o, numbers.Real) and not isinstance(o, bool) and math.isfinite(o), l
    # t_exposed: per iteration the max over ranks of t_overall - t_compute, never above the
    # median of the per-iteration max of t_overall
    assert r["t_exposed_us"] <= r["t_overall_us"] + 1e-3, f"t_exposed > t_overall: {l}"
    tp = r["t_pure_us"]
    osu = 100 - 100 * r["t_exposed_us"] / tp
    strict = 100 - 100 * (r["t_overall_us"] - r["t_compute_alone_us"]) / tp
    tol = lambda x: 0.01 + 1e-4 * abs(x) + 100 * 2e-3 / tp  # JSON rounding to 1e-3 us
    assert abs(r["overlap_pct"] - osu) <= tol(osu), f"overlap_pct != OSU formula ({osu}): {l}"
    assert abs(r["overlap_strict_pct"] - strict) <= tol(strict), f"strict != formula ({strict}): {l}"
    sizes.append(r["bytes"])
assert sorted(sizes) == [65536, 262144], sizes
PY
echo "1..$n"
[ $fails -eq 0 ]
