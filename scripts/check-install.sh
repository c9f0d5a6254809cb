#!/usr/bin/env bash
# Installs a build into a scratch prefix and builds a small program against it
# twice: with pkg-config and with find_package(Laconic). Cleans up after itself.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cat >"$tmp/use.c" <<'C'
#include <laconic.h>
#include <stdio.h>
int main(void) { printf("%s\n", lc_status_str(LC_ERR_PEER_LOST)); return 0; }
C
lib=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1)
PKG_CONFIG_PATH=$lib cc "$tmp/use.c" -o "$tmp/use-pc" $(PKG_CONFIG_PATH=$lib pkg-config --cflags --libs laconic)
LD_LIBRARY_PATH=$(dirname "$lib") "$tmp/use-pc" | grep -q "peer lost"
# laconic_mpi.h (when installed) compiles with pkg-config's flags alone.
if [ -f "$tmp/prefix/include/laconic_mpi.h" ]; then
    echo '#include <laconic_mpi.h>' >"$tmp/mpi.c"
    cc -c "$tmp/mpi.c" -o "$tmp/mpi.o" $(PKG_CONFIG_PATH=$lib pkg-config --cflags laconic)
fi
mkdir -p "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(use C)
find_package(Laconic REQUIRED)
add_executable(use ../use.c)
target_link_libraries(use Laconic::laconic)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm/b" >/dev/null
LD_LIBRARY_PATH=$(dirname "$lib") "$tmp/cm/b/use" | grep -q "peer lost"
# Only lc_* symbols leave the shared library.
so=$(ls "$(dirname "$lib")"/liblaconic.so | head -1)
leaked=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^lc_[a-z]' | grep -v '^_' || true)
if [ -n "$leaked" ]; then echo "install: non-lc_ symbols exported: $leaked"; exit 1; fi
# The Python package: importable from the prefix alone (no LACONIC_LIB, no
# build tree), it loads the installed library and runs a one-rank all-reduce.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
pkg=$(find "$tmp/prefix" -name __init__.py -path "*/laconic/__init__.py" | head -1)
[ -n "$pkg" ] || { echo "install: the laconic Python package was not installed"; exit 1; }
env -u LACONIC_LIB PYTHONPATH="$(dirname "$(dirname "$pkg")")" LC_RANK=0 LC_WORLD_SIZE=1 \
    LC_COORD=127.0.0.1:0 "$py" - "$tmp/prefix" <<'PY'
import os, sys
import numpy as np
import laconic
prefix = os.path.realpath(sys.argv[1])
assert os.path.realpath(laconic.lib_path).startswith(prefix + "/"), laconic.lib_path
with laconic.Communicator() as c:
    x = np.arange(5, dtype=np.float32)
    c.allreduce(x)
    assert (x == np.arange(5)).all() and c.size == 1
PY
echo "install: pkg-config and find_package(Laconic) both work; only lc_* exported; Python package imports and runs"
