#!/usr/bin/env bash
# Checks every tracked C/C++ file against .clang-format; prints the files
# that differ. Fix with: clang-format -i <files>
set -uo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' '*.cc' '*.cpp')
bad=0
for f in $files; do
    [ -f "$f" ] || continue
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "format: $f differs from .clang-format (clang-format -i $f)"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "format: ok"
exit $bad
