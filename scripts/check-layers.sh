#!/usr/bin/env bash
# Checks the dependency rule of the layers (DESIGN section 2): every
# #include in a layer's files must name a header that layer may use, and no
# file-scope declaration (a prototype or an extern) in a library layer may
# reach a function or variable defined in a layer it may not include, the
# way round the first rule. Prints each violation as file:line, and exits 1
# if any.
#
#   scripts/check-layers.sh [TREE]    (default: this checkout)
set -u
cd "${1:-$(dirname "$0")/..}"

fail=0
report() { echo "layer rule: $1:$2: $3 ($4)"; fail=1; }

# allowed_quoted LAYER_DIR FILE HEADER -> 0 if allowed
allowed_quoted() {
    local file=$1 hdr=$2 dir
    dir=$(dirname "$file")
    # A file may always include a header next to it.
    [ -f "$dir/$hdr" ] && return 0
    [ "$(dirname "$hdr")" = "$dir" ] && return 0
    case "$file" in
    core/*) [[ $hdr == laconic.h || $hdr == core/* ]] ;;
    codecs/*) [[ $hdr == laconic.h || $hdr == core/* || $hdr == codecs/* ]] ;;
    transport/registry.c) [[ $hdr == laconic.h || $hdr == core/* || $hdr == transport/* ]] ;;
    transport/*/*)
        local sub
        sub=$(echo "$file" | cut -d/ -f2)
        # A transport may use the shared helpers at the top of transport/, never
        # another transport's folder.
        [[ $hdr == laconic.h || $hdr == laconic_mpi.h || $hdr == core/* ||
            ($hdr == transport/* && $hdr != transport/*/*) || $hdr == transport/$sub/* ]] ;;
    transport/*) [[ $hdr == laconic.h || $hdr == core/* ||
        ($hdr == transport/* && $hdr != transport/*/*) ]] ;;
    coll/*) [[ $hdr == laconic.h || $hdr == core/* || $hdr == coll/* || $hdr == codecs/codec.h ||
        $hdr == transport/transport.h ]] ;;
    ft/*) [[ $hdr == laconic.h || $hdr == core/* || $hdr == ft/* ||
        $hdr == transport/transport.h ]] ;;
    api/*) return 0 ;;
    # A benchmark of one layer may use that layer's header, as its tests do:
    # lc-codec-bench measures the codecs alone.
    perf/lc-codec-bench.c) [[ $hdr == laconic.h || $hdr == codecs/codec.h || $hdr == perf/datagen.h ]] ;;
    tools/* | perf/* | examples/*) [[ $hdr == laconic.h || $hdr == laconic_mpi.h ]] ;;
    tests/*) return 0 ;;
    *) return 0 ;;
    esac
}

# Third-party system headers are confined to the layer that wraps them.
allowed_system() {
    local file=$1 hdr=$2
    case "$hdr" in
    zstd.h | zstd_errors.h) [[ $file == codecs/* || $file == perf/* || $file == tests/* ]] ;;
    mpi.h) [[ $file == transport/mpi/* || $file == api/* || $file == perf/* ||
        $file == tests/* || $file == include/* || $file == examples/* ]] ;;
    ucp/* | uct/* | ucs/*) [[ $file == transport/ucx/* || $file == tests/* ]] ;;
    infiniband/* | rdma/*) [[ $file == transport/verbs/* || $file == tests/* ]] ;;
    gloo/*) [[ $file == perf/* ]] ;;
    cmocka.h) [[ $file == tests/* ]] ;;
    *) return 0 ;;
    esac
}

files=$( (git rev-parse --show-prefix 2>/dev/null | grep -qx '' &&
    git ls-files -co --exclude-standard -- '*.c' '*.h' '*.cc' '*.cpp') ||
    find . -name '*.[ch]' | sed 's|^\./||')
for f in $files; do
    [ -f "$f" ] || continue
    while IFS=: read -r line text; do
        if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
            hdr=${BASH_REMATCH[1]}
            allowed_quoted "$f" "$hdr" || report "$f" "$line" "\"$hdr\"" "not allowed in ${f%%/*}/"
        elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
            hdr=${BASH_REMATCH[1]}
            allowed_system "$f" "$hdr" || report "$f" "$line" "<$hdr>" "third-party header outside its layer"
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f")
done
# Declarations that go round the includes. c_symbols prints, for each
# file-scope statement at column 0 that is not static (clang-format puts
# them there), "DEF file line symbol" for a definition (a function body, or
# an initialised variable) and "DECL file line symbol" for a declaration (a
# prototype or an extern), for the lc-prefixed names only.
c_symbols() {
    awk '
    function emit(kind, st, line,   s, m, rest) {
        if (st ~ /^extern "C"/) return
        if (st ~ /^extern/ && st !~ /\(/) {  # extern variables: every name before , ; [
            rest = st
            while (match(rest, /[A-Za-z_][A-Za-z0-9_]*[[:space:]]*[,;\[]/)) {
                s = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
                sub(/[[:space:]]*[,;\[]$/, "", s)
                if (s ~ /^lc/) print kind, FILENAME, line, s
            }
            return
        }
        if (match(st, /[A-Za-z_][A-Za-z0-9_]*[[:space:]]*(\(|\[|=)/)) {
            s = substr(st, RSTART, RLENGTH); sub(/[[:space:]]*[(\[=]$/, "", s)
            if (s ~ /^lc/) print kind, FILENAME, line, s
        }
    }
    FNR == 1 { on = 0 }
    !on && /^[A-Za-z_]/ && !/^(static|typedef|struct|enum|union|_Static_assert)[^A-Za-z0-9_]/ {
        on = 1; st = ""; start = FNR
    }
    on {
        st = st " " $0
        if ($0 ~ /;[[:space:]]*(\/\*.*\*\/)?[[:space:]]*$/ && st !~ /[{=]/) { emit("DECL", substr(st, 2), start); on = 0 }
        else if ($0 ~ /[{]/ || (st ~ /=/ && $0 ~ /;/)) { emit("DEF", substr(st, 2), start); on = 0 }
    }' "$@"
}
lib=()
for f in $files; do
    case $f in core/* | codecs/* | transport/* | coll/* | ft/* | api/*) [ -f "$f" ] && lib+=("$f") ;; esac
done
if [ ${#lib[@]} -gt 0 ]; then
    syms=$(c_symbols "${lib[@]}")
    declare -A def
    while read -r kind file line sym; do
        [ "$kind" = DEF ] && def[$sym]=$file
    done <<<"$syms"
    while read -r kind file line sym; do
        [ "$kind" = DECL ] || continue
        d=${def[$sym]:-}
        [ -n "$d" ] && [ "$d" != "$file" ] || continue
        # A header may declare what a folder below it defines (transport/bootstrap.h
        # and transport/bootstrap/): the interface of that folder's implementations.
        [[ $file == *.h && $(dirname "$d") == "$(dirname "$file")"/* ]] && continue
        # Otherwise as if it included a header beside the definition.
        allowed_quoted "$file" "$(dirname "$d")/_.h" ||
            report "$file" "$line" "declares $sym, defined in $d" "a layer ${file%%/*}/ may not use"
    done <<<"$syms"
fi
if [ $fail -eq 0 ]; then echo "layer rule: ok"; fi
exit $fail
