#!/usr/bin/env bash
# The worked example of docs/evals.md ("Reading a verdict"): three variants over the built-in suites,
# then the verdict (report), the examples two variants answer differently (diff), and a rerun from the
# manifest that must reproduce every accuracy number. Offline; on tiny (random weights) by default.
#   bash scripts/verdict_example.sh                 # tiny
#   MODEL=mini bash scripts/verdict_example.sh      # the trained mini, once it exists
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-tiny}
OUT=${OUT:-runs/verdict-$MODEL}
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

$PY -m evals run --variants "$MODEL attn=sdpa" "$MODEL attn=eager" "$MODEL sparsity=off" \
    --tasks builtin --measure latency,memory --threads 1 --out "$OUT"
$PY -m evals report "$OUT"                                         # verdict lines, table; writes $OUT/verdict.md
$PY -m evals diff "$OUT" "$MODEL sdpa fp32" "sp:off" --task builtin_mc   # where sparsity=off changes the answer
$PY -m evals rerun "$OUT" --out "$OUT-rerun"                       # same accuracy expected; timings show the noise
