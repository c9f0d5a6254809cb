#!/usr/bin/env bash
# scripts/check-layers.sh on this checkout (must pass), and on small trees
# made here, each breaking the layer rule one way (must fail, naming the
# line) or keeping it (must pass).
#   tests/test_layers.sh SOURCE_DIR
set -u
src=${1:-$(dirname "$0")/..}
check=$src/scripts/check-layers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
out=$(bash "$check" "$src") || { echo "the checkout breaks the layer rule:"; echo "$out"; bad=1; }

# tree NAME: a fresh tree with a concrete transport defining three symbols
# and a core function.
tree() {
    local t=$tmp/$1
    mkdir -p "$t/coll" "$t/core" "$t/transport/tcp" "$t/transport/bootstrap"
    printf 'int lc__tcp_secret = 1;\n\nvoid lc__tcp_poke(int a)\n{\n    (void)a;\n}\n\nint lc__tcp_long(int a,\n                 int b)\n{\n    return a + b;\n}\n' >"$t/transport/tcp/tcp.c"
    printf 'int lc__core_helper(void)\n{\n    return 0;\n}\n' >"$t/core/util.c"
    printf 'int lc__bootstrap_go(void)\n{\n    return 0;\n}\n' >"$t/transport/bootstrap/b.c"
    echo "$t"
}
# expect NAME WANT(0 pass, 1 fail) PATTERN FILE TEXT: write TEXT to FILE in a fresh tree
expect() {
    local name=$1 want=$2 pat=$3 file=$4 text=$5 t out rc
    t=$(tree "$name")
    printf '%b' "$text" >"$t/$file"
    out=$(bash "$check" "$t" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -q -- "$pat" <<<"$out"; then
        echo "FAIL $name: exit $rc (wanted $want), output:"; echo "$out"; bad=1
    else
        echo "ok   $name"
    fi
}
expect include_tcp_from_coll 1 'coll/a.c:1: "transport/tcp/tcp_priv.h"' coll/a.c \
    '#include "transport/tcp/tcp_priv.h"\n'
expect extern_variable 1 'coll/a.c:2: declares lc__tcp_secret, defined in transport/tcp/tcp.c' coll/a.c \
    '/* reaches into TCP */\nextern int lc__tcp_secret;\n'
expect prototype 1 'coll/a.c:1: declares lc__tcp_poke' coll/a.c \
    'void lc__tcp_poke(int a);\n'
expect prototype_two_lines 1 'coll/a.c:3: declares lc__tcp_long' coll/a.c \
    '#include <stddef.h>\n\nint lc__tcp_long(int a,\n                 int b);\n'
expect header 1 'coll/a.h:1: declares lc__tcp_poke' coll/a.h \
    'void lc__tcp_poke(int a);\n'
expect core_from_coll 0 'layer rule: ok' coll/a.c \
    'int lc__core_helper(void);\n'
expect own_static 0 'layer rule: ok' coll/a.c \
    'static void lc__tcp_poke(int a);\n'
expect interface_header 0 'layer rule: ok' transport/bootstrap.h \
    'int lc__bootstrap_go(void);\n'
exit $bad
