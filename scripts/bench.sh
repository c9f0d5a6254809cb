#!/usr/bin/env bash
# The main job: install what is missing, build, and run a 4-rank all-reduce
# benchmark on this host (Laconic over TCP loopback, and Open MPI's
# MPI_Allreduce in the same run when mpirun is present), printing a table.
# Usage: scripts/bench.sh [extra flags for perf/bench-allreduce.sh]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
exec bash perf/bench-allreduce.sh --build-dir build "$@"
