#!/usr/bin/env bash
# All-reduce benchmark on this host: Laconic against Open MPI's MPI_Allreduce
# (ob1 + tcp btl over loopback) in the same processes, size by size, then a
# summary table with the Laconic/MPI ratios.
#
#   perf/bench-allreduce.sh [--build-dir DIR] [-n RANKS] [-b MIN] [-e MAX] [-f F] [--iters N]
#   perf/bench-allreduce.sh --figures      the figures of issue 2 (bandwidth at 2 and
#                                           4 ranks, 8-byte latency, peak RSS at 256 MiB)
# The bandwidth figures run twice: Open MPI as it comes, and with glibc's
# malloc kept off mmap (Open MPI mallocs its scratch per call; see MPI_TUNED
# below). Each size's ratio is the smaller of the two runs' ratios, so
# Laconic has to beat the better Open MPI.
# Without mpirun, Laconic runs alone under lcrun. Raw rows go to
# perf/results/<date>-allreduce.jsonl (one JSON object per row).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build nranks=4 minb=8 maxb=64M step=4 iters=20 figures=0
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$2; shift ;;
    -n) nranks=$2; shift ;;
    -b) minb=$2; shift ;;
    -e) maxb=$2; shift ;;
    -f) step=$2; shift ;;
    --iters) iters=$2; shift ;;
    --figures) figures=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-allreduce: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
bench=$build/perf/lc-bench lcrun=$build/tools/lcrun
[ -x "$bench" ] && [ -x "$lcrun" ] || { echo "bench-allreduce: build first ($bench missing)" >&2; exit 1; }
mkdir -p perf/results
out=perf/results/$(date +%Y%m%d-%H%M%S)-allreduce.jsonl
: >"$out"
have_mpi=0
command -v mpirun >/dev/null && "$bench" --help | grep -q baseline && have_mpi=1

# glibc ignores MALLOC_MMAP_THRESHOLD_ above 32 MiB (half its heap size
# limit), so "raising the threshold" for Open MPI's 32-512 MiB scratch means
# no mmap at all, and no trimming of the freed heap top either (else every
# call faults the pages in again).
MPI_TUNED=(-x MALLOC_MMAP_THRESHOLD_=33554432 -x MALLOC_MMAP_MAX_=0 -x MALLOC_TRIM_THRESHOLD_=17179869184)

# run NRANKS ARGS...: one lc-bench run (with the MPI baseline when possible),
# printing its table and appending its rows to $json (default $out). Extra
# mpirun arguments come from the array MPIRUN_EXTRA.
json=$out
MPIRUN_EXTRA=()
run() {
    local n=$1; shift
    if [ $have_mpi -eq 1 ]; then
        timeout -k 10 1200 mpirun -n "$n" --oversubscribe --allow-run-as-root --bind-to none \
            --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo ${MPIRUN_EXTRA[@]+"${MPIRUN_EXTRA[@]}"} \
            "$bench" --baseline mpi --json "$json" "$@"
    else
        timeout -k 10 1200 "$lcrun" -n "$n" -- "$bench" --json "$json" "$@"
    fi
}

# awk helper shared by the tables below: get(key) reads a field of the
# current JSON row (the flat objects lc-bench --json writes).
JSON_GET='function get(k,   m) { if (match($0, "\"" k "\":\"?[^,\"}]*")) { m = substr($0, RSTART, RLENGTH); sub(/.*:"?/, "", m); return m } return "" }'

# summary FILTER: Laconic vs MPI per size from the JSON rows matching FILTER.
summary() {
    grep -- "$1" "$out" | awk "$JSON_GET"'
    { key = get("nranks") " " get("bytes"); impl = get("impl")
      t[key, impl] = get("time_us"); bw[key, impl] = get("busbw_gbps"); wrong[key] += get("wrong")
      if (impl == "lc") algo[key] = get("algo"); if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
    END {
      printf "%6s %12s %7s %12s %12s %10s %10s %9s %7s\n", "ranks", "bytes", "algo", "lc_us", "mpi_us", "lc_busbw", "mpi_busbw", "lc/mpi", "#wrong"
      for (i = 1; i <= n; i++) { k = order[i]; split(k, a, " ")
        r = (t[k, "mpi"] != "" && t[k, "lc"] > 0) ? sprintf("%.2fx", t[k, "mpi"] / t[k, "lc"]) : "-"
        printf "%6s %12s %7s %12.1f %12s %10.3f %10s %9s %7d\n", a[1], a[2], algo[k], t[k, "lc"],
          t[k, "mpi"] == "" ? "-" : sprintf("%.1f", t[k, "mpi"]), bw[k, "lc"],
          bw[k, "mpi"] == "" ? "-" : sprintf("%.3f", bw[k, "mpi"]), r, wrong[k] }
    }'
}

if [ $figures -eq 0 ]; then
    echo "== all-reduce, $nranks ranks, float sum, $minb..$maxb (x$step), $iters iterations per size"
    run "$nranks" -b "$minb" -e "$maxb" -f "$step" -n "$iters" -w 5
    echo
    echo "== summary (lc/mpi = MPI time / Laconic time: above 1 means Laconic is faster)"
    summary '"coll":"allreduce"'
    echo "rows: $out"
    exit 0
fi

# --- the figures of issue 2
[ $have_mpi -eq 1 ] || { echo "bench-allreduce --figures needs mpirun (openmpi-bin)" >&2; exit 1; }

# versus PLAIN TUNED TARGET: per size, Laconic/MPI in the run with Open MPI as
# it comes and in the run with its malloc tuned, and the smaller of the two;
# then the geometric mean, the worst size and the sizes below TARGET.
versus() {
    awk -v target="$3" "$JSON_GET"'
    FNR == 1 { f++ }
    { k = get("bytes"); t[f, k, get("impl")] = get("time_us"); if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
    END {
      printf "%12s %10s %10s %8s %10s %10s %8s %8s\n", "bytes", "lc_us", "mpi_us", "lc/mpi", "lc_us", "mpi_tuned", "lc/mpi", "worse"
      s = 0; m = 0; worst = 1e9; miss = ""
      for (i = 1; i <= n; i++) { k = order[i]
        r1 = t[1, k, "mpi"] / t[1, k, "lc"]; r2 = t[2, k, "mpi"] / t[2, k, "lc"]; r = r1 < r2 ? r1 : r2
        printf "%12s %10.1f %10.1f %7.2fx %10.1f %10.1f %7.2fx %7.2fx\n", k, t[1, k, "lc"], t[1, k, "mpi"], r1, t[2, k, "lc"], t[2, k, "mpi"], r2, r
        s += log(r); m++; if (r < worst) worst = r; if (r < target) miss = miss " " k
      }
      printf "SUMMARY geomean %.2fx over %d sizes, worst %.2fx, below %.1fx:%s\n", exp(s / m), m, worst, target, miss == "" ? " none" : miss
    }' "$1" "$2"
}

declare -A bw
for n in 4 2; do
    target=$([ "$n" = 4 ] && echo 1.5 || echo 1.0)
    for variant in plain tuned; do
        echo "== bandwidth: $n ranks, 4 MiB .. 256 MiB, Open MPI $([ $variant = plain ] && echo "as it comes" || echo "with ${MPI_TUNED[*]}")"
        json=$out.$n.$variant
        : >"$json"
        if [ $variant = plain ]; then MPIRUN_EXTRA=(); else MPIRUN_EXTRA=("${MPI_TUNED[@]}"); fi
        run "$n" -b 4M -e 256M -f 2 -n 20 -w 2
        sed "s/^{/{\"mpi_malloc\":\"$variant\",/" "$json" >>"$out"
    done
    echo "== $n ranks: Laconic/MPI per size (time ratio; target >= ${target}x)"
    table=$(versus "$out.$n.plain" "$out.$n.tuned" "$target")
    echo "$table" | grep -v '^SUMMARY'
    bw[$n]=$(echo "$table" | sed -n 's/^SUMMARY //p')
    rm -f "$out.$n.plain" "$out.$n.tuned"
done
json=$out
MPIRUN_EXTRA=()
echo "== latency: 4 ranks, 8 bytes, 2000 iterations"
run 4 -b 8 -e 8 -n 2000 -w 200
echo "== peak RSS: 4 ranks, 256 MiB all-reduce, Laconic alone under lcrun"
rss_out=$(timeout -k 10 600 "$lcrun" -n 4 -- "$bench" -b 256M -e 256M -n 3 -w 1 -c 1)
echo "$rss_out"
rss=$(echo "$rss_out" | awk '/peak RSS, largest rank/ {print $(NF-1)}')

echo
printf '%-44s %s\n' "figure" "measured (target)"
printf '%-44s %s (>= 1.5x at every size)\n' "busbw Laconic/MPI, 4 ranks, 4-256 MiB" "${bw[4]}"
printf '%-44s %s (>= 1.0x at every size)\n' "busbw Laconic/MPI, 2 ranks, 4-256 MiB" "${bw[2]}"
printf '%-44s %s (Laconic/MPI <= 1.5x)\n' "8-byte latency, 4 ranks" \
    "$(grep '"bytes":8,' "$out" | awk "$JSON_GET"'
      { t[get("impl")] = get("time_us") }
      END { printf "lc %.1f us, mpi %.1f us: %.2fx", t["lc"], t["mpi"], t["lc"] / t["mpi"] }')"
printf '%-44s %s (<= 256+256+64 = 576 MiB)\n' "peak RSS per rank, 256 MiB all-reduce" "${rss:-?} MiB"
echo "rows: $out"
