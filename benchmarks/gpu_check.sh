#!/usr/bin/env bash
# GPU check: decode, prefill and memory benchmarks of e2b-shape and e4b-shape on one NVIDIA GPU,
# across eager / sdpa / flex_attention, static cache and compile, and the 16 MatFormer Lab presets served
# elastically from one e4b-shape, in at most 9 minutes.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default: $OUT, else results/gpu
#
# Every step has its own time limit (they add up to 530 s), so a slow or failing step is logged and
# the next one still runs. JSON results and log.txt land in OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-results/gpu}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY=.venv/bin/python

# Install only what is missing: the GPU machine may have no network, and torch is usually there.
if ! "$PY" -c "import torch, transformers, timm, safetensors, numpy" 2>/dev/null; then
  "$PY" -m pip install -q -r requirements.txt || echo "pip install failed; continuing with what is installed"
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD"
export G3N_CACHE="${G3N_CACHE:-/tmp/g3n-cache}"   # the written e2b/e4b checkpoints (9 and 14 GB)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"

step() {  # step SECONDS MODULE ARGS...: run one benchmark under a time limit, never stop the script
  local limit=$1; shift
  echo "== $* (limit ${limit}s)" | tee -a "$OUT_DIR/log.txt"
  timeout --kill-after=10 "$limit" "$PY" -m "$@" --device cuda --out "$OUT_DIR" 2>&1 | grep -v "Warning\|pytree" | tee -a "$OUT_DIR/log.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || echo "!! step failed or ran out of time: $*" | tee -a "$OUT_DIR/log.txt"
}

# e2b-shape: every attention kind, the static cache, and the compiled decode step (CUDA graphs).
# The first step also writes the checkpoint once (about 40 s on 16 cores).
step 190 benchmarks.decode --model e2b-shape --rounds 2 --new-tokens 64 --no-memory \
  --variants "attn=eager" "attn=flex_attention" "kv_cache=static" "kv_cache=static compile=true"
step 45 benchmarks.prefill --model e2b-shape --lengths 512 2048 --rounds 3 --variants "attn=eager" "attn=flex_attention"
step 45 benchmarks.memory --model e2b-shape --variants "ple=mmap"
# e4b-shape: the same without compile (its compile would not fit the budget as well).
step 110 benchmarks.decode --model e4b-shape --rounds 2 --new-tokens 64 --no-memory --no-bandwidth \
  --variants "attn=eager" "attn=flex_attention" "kv_cache=static"
step 40 benchmarks.prefill --model e4b-shape --lengths 512 2048 --rounds 3 --variants "attn=eager" "attn=flex_attention"
step 40 benchmarks.memory --model e4b-shape --variants "ple=mmap"
# Elastic MatFormer: switch through the 16 Lab presets on e4b-shape, every one a view of the loaded
# parent: GPU memory after each (flat), first-use and switch times (docs/matformer.md).
step 60 benchmarks.elastic --model e4b-shape --features "" --no-standalone
ls -l "$OUT_DIR"
