#!/usr/bin/env bash
# The main job: install what is missing, build, and run a 4-rank compressed
# all-reduce benchmark (perf/bench-compressed.sh): 64 MiB of f32 on 4
# emulated hosts joined by 1 Gbit/s links, Laconic uncompressed and with
# onebit, topk 1%, int8 and bf16 against Open MPI and Gloo in the same run;
# a table and a PNG chart (on loopback, saying why, without root or ip netns).
#
#   scripts/bench.sh [options of perf/bench-compressed.sh]
#   scripts/bench.sh --loopback-sweep [options of perf/bench-allreduce.sh]
#       the uncompressed all-reduce sweep, 8 B to 64 MiB, against Open MPI
#       over loopback
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
if [ "${1:-}" = --loopback-sweep ]; then
    shift
    exec bash perf/bench-allreduce.sh --build-dir build "$@"
fi
exec bash perf/bench-compressed.sh --build-dir build "$@"
