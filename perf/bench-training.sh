#!/usr/bin/env bash
# Training accuracy through Laconic: does a compressed all-reduce leave the
# training intact? Data-parallel training of three models (perf/training/
# models.py) on N ranks of this host, every codec on every compressed
# all-reduce algorithm, each row against uncompressed at the same settings.
#
#   perf/bench-training.sh [--build-dir DIR] [--models mlp,cnn,lm] [--ranks 4,8]
#                          [--rows ROW,...] [--seeds 0,...] [--steps N]
#                          [--timeout SEC] [--out DIR]
#
# A row is CODEC[@ALGO][/ef=SCHEME][/warmup=N][/opt=adam] (perf/training/train.py); the default rows
# are uncompressed, then onebit, topk at 1%, 0.1% and 0.05%, int8, bf16 and
# fp16, each on twophase, ring, tree and sparse. Each (model, ranks, seed) is
# one lcrun job that trains every row in turn; a job that fails or passes
# --timeout (default 3600 s) is reported and the others go on.
#
# Results: <out>/results.jsonl (a JSON object per row), then
# perf/training/report.py writes <out>/table.md, <out>/summary.json and
# <out>/accuracy.svg (metric against wire reduction) and prints the table,
# with each row's distance from uncompressed and whether it meets the
# issue's targets. Default out: perf/results/<date>-<time>-training.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build models=mlp,cnn,lm ranks=4,8 seeds=0 steps=0 tmo=3600 out="" rows=""
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build=$(realpath "$2"); shift ;;
    --models) models=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --rows) rows=$2; shift ;;
    --seeds) seeds=$2; shift ;;
    --steps) steps=$2; shift ;;
    --timeout) tmo=$2; shift ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench-training: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$rows" ]; then
    rows=none
    for c in onebit topk:0.01 topk:0.001 topk:0.0005 int8 bf16 fp16; do
        for a in twophase ring tree sparse; do rows=$rows,$c@$a; done
    done
fi
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
lcrun=$build/tools/lcrun
for f in "$lcrun" "$build/python/laconic/_config.py"; do
    [ -e "$f" ] || { echo "bench-training: $f missing: build first (cmake --build build)" >&2; exit 1; }
done
"$py" -c "import torch, numpy, sklearn" 2>/dev/null ||
    { echo "bench-training: $py cannot import torch, numpy and sklearn (scripts/install-deps.sh)" >&2; exit 1; }
export PYTHONPATH=$build/python${PYTHONPATH:+:$PYTHONPATH}
out=${out:-$root/perf/results/$(date +%Y-%m-%d-%H%M%S)-training}
mkdir -p "$out"
res=$out/results.jsonl
touch "$res"
failed=0
for m in ${models//,/ }; do
    for n in ${ranks//,/ }; do
        for s in ${seeds//,/ }; do
            echo "== $m on $n ranks, seed $s" >&2
            if ! "$lcrun" -n "$n" -t "$tmo" -- "$py" "$here/training/train.py" --model "$m" \
                --rows "$rows" --steps "$steps" --seed "$s" --out "$res" >"$out/$m-$n-$s.log" 2>&1; then
                echo "bench-training: $m on $n ranks (seed $s) failed: $out/$m-$n-$s.log" >&2
                tail -5 "$out/$m-$n-$s.log" >&2
                failed=1
            fi
        done
    done
done
"$py" "$here/training/report.py" "$out"
exit $failed
