#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else):
#   1. install missing Debian packages        5. ctest (every test)
#   2. build with -Wall -Wextra -Werror        6. install + use via pkg-config and find_package
#   3. clang-format check, pyflakes            7. ASan+UBSan build, ctest again
#   4. layer rule check (DESIGN section 2)     8. TSan build, the threaded tests
#                                              9. the codec decoders' fuzz targets, 30 s each
# Usage: scripts/test.sh [--quick]   (--quick: steps 1-6 only)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
step() { echo; echo "=== [$(($(date +%s) - start))s] $*"; }

step "dependencies"
bash scripts/install-deps.sh

step "build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLC_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

step "format"
bash scripts/check-format.sh

step "layers"
bash scripts/check-layers.sh

step "python lint (pyflakes)"
/usr/bin/python3 -m pyflakes python tests/python perf/python perf/*.py perf/training examples/python

# Multi-process tests start up to 8 ranks on 2 cores: run them one at a time
# so that timing promises (a lost peer reported within 2 s) are measured on a
# machine that is busy with one test, not several.
# run_ctest DIR [EXCLUDE]: EXCLUDE is a label regex to leave out as well (ctest keeps only
# the last -LE it is given, so the two are joined into one).
run_ctest() {
    local dir=$1 skip=${2:+|$2}
    (cd "$dir" && ctest --output-on-failure --no-tests=error -j"$jobs" -LE "multiprocess$skip" &&
        ctest --output-on-failure --no-tests=ignore -j1 -L multiprocess ${2:+-LE "$2"})
}

step "tests"
run_ctest build

step "install and use"
bash scripts/check-install.sh build

if [ $quick -eq 1 ]; then
    step "done (quick)"
    exit 0
fi

step "ASan + UBSan build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLC_WERROR=ON \
    -DLC_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_ctest build-asan nosan

step "TSan build and threaded tests"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DLC_WERROR=ON -DLC_SANITIZE=thread >/dev/null
cmake --build build-tsan -j"$jobs"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --output-on-failure --no-tests=error -j1 -L threaded)

step "fuzzing the codec decoders (clang, libFuzzer, ASan + UBSan)"
bash scripts/fuzz.sh --seconds "${LC_FUZZ_SECONDS:-30}"

step "all passed in $(($(date +%s) - start)) s"
