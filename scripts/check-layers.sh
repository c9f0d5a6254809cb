#!/usr/bin/env bash
# Checks the dependency rule of the layers (DESIGN section 2): every
# #include in a layer's files must name a header that layer may use.
# Prints each violation as file:line: include, and exits 1 if any.
set -u
cd "$(dirname "$0")/.."

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

files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' '*.cc' '*.cpp' 2>/dev/null ||
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
if [ $fail -eq 0 ]; then echo "layer rule: ok"; fi
exit $fail
