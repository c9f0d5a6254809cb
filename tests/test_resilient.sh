#!/usr/bin/env bash
# examples/resilient_train on 4 ranks under lcrun --keep-going: rank 2 kills
# itself in step 20 of 60; the other 3 must finish every step, say which
# step they lost, hold identical models and have trained (distance down).
# lcrun's --timeout bounds it; lcrun kills every rank it started on exit.
#   tests/test_resilient.sh LCRUN EXAMPLE
set -euo pipefail
lcrun=$1 example=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
"$lcrun" --keep-going --timeout 120 -n 4 "$example" 60 2 20 >"$out" 2>&1 || rc=$?
cat "$out"
fail() { echo "test_resilient: $*" >&2; exit 1; }
[ "$rc" = 0 ] || fail "lcrun exited with $rc"
grep -q "rank 2: killing myself in step 20" "$out" || fail "the victim did not die"
for r in 0 1 3; do
    grep -q "rank $r: step 20 aborted" "$out" || fail "rank $r did not report the lost step"
    grep -q "rank $r: now rank [0-2] of 3 in view 1 (left: 2)" "$out" || fail "rank $r: no new view"
    grep -q "rank $r: finished 60 steps on 3 of 4 ranks; 1 step(s) lost; .* models identical" "$out" ||
        fail "rank $r did not finish on 3 ranks with the same model"
done
echo "test_resilient: ok"
