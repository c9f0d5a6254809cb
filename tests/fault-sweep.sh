#!/usr/bin/env bash
# The full fault sweep (issue 18): a rank killed at every message index of
# step 2's collective, for every all-reduce and all-to-all algorithm x
# {none, onebit, topk, int8} x in/out of place x n in {3, 4, 5, 8}, with a
# real coordinator; CI runs a random sample of the same cases
# (ctest -R fault_sweep.sample). Each case is bounded (30 s) and cleans up
# its processes.
#   tests/fault-sweep.sh [BUILD_DIR]      (default: build)
# Prints one line per case and a summary; exits 1 if any case failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
exe=$build/tests/fault_sweep
[ -x "$exe" ] || { echo "fault-sweep: $exe missing: build first" >&2; exit 1; }
start=$(date +%s)
rc=0
"$exe" --all 2> >(grep -v '^\[laconic' >&2) || rc=$?
echo "fault-sweep: $(($(date +%s) - start)) s"
exit $rc
