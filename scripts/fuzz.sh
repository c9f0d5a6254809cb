#!/usr/bin/env bash
# Builds the codec decoders' libFuzzer targets with clang (ASan + UBSan) and
# runs each for a bounded time, two at a time (2 cores), starting from a
# corpus of valid messages each target writes itself. A crash, leak or
# sanitizer report fails the script and leaves the reproducer in
# $out/<target>/crash-*.
#
#   scripts/fuzz.sh [--seconds N] [--build-dir DIR]     (default 30 s per target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${LC_FUZZ_SECONDS:-30} build=build-fuzz
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift ;;
    --build-dir) build=$2; shift ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (scripts/install-deps.sh)" >&2; exit 1; }
CC=clang cmake -S . -B "$build" -DLC_FUZZ=ON -DLC_SANITIZE=address,undefined \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLC_WITH_MPI=OFF >/dev/null
cmake --build "$build" -j2 --target fuzz >/dev/null
out=$build/fuzz-runs
rm -rf "$out"
mkdir -p "$out"
targets=$(cd "$build/tests/fuzz" && ls fuzz_* | grep -v '\.' || true)
[ -n "$targets" ] || { echo "fuzz.sh: no targets built" >&2; exit 1; }

run_one() {
    local t=$1 dir=$out/$1
    mkdir -p "$dir/corpus"
    # Seeds first (a run of 0 inputs writes them), then the bounded run.
    LC_FUZZ_SEEDS=$dir/corpus "$build/tests/fuzz/$t" -runs=0 "$dir/corpus" >/dev/null 2>&1 || true
    if (cd "$dir" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        timeout -k 10 $((seconds + 60)) "../../tests/fuzz/$t" -max_total_time="$seconds" \
        -max_len=70000 -rss_limit_mb=2048 -print_final_stats=1 corpus >log 2>&1); then
        echo "fuzz: $t ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | awk '{print $2}') inputs in ${seconds} s)"
    else
        echo "fuzz: $t FAILED (log: $dir/log)"
        tail -30 "$dir/log"
        return 1
    fi
}

fail=0
set -- $targets
while [ $# -gt 0 ]; do
    run_one "$1" & p1=$!
    p2=
    if [ $# -gt 1 ]; then run_one "$2" & p2=$!; fi
    wait $p1 || fail=1
    if [ -n "$p2" ]; then wait $p2 || fail=1; fi
    shift; [ $# -gt 0 ] && shift
done
exit $fail
