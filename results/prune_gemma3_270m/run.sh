#!/bin/bash
# The real pruning run of issue 3 (Gemma-3-270M, cloze, to 50%): IP with SKIP-Prun, one-shot ShortGPT, tail and
# random (3 seeds) on ARC-Easy and BoolQ. Sequential on purpose: the machine has 2 cores. Each command resumes
# where it stopped if rerun; --cache-dir shares the dense pass and every shared prefix state between methods.
# Usage: bash results/prune_gemma3_270m/run.sh [DATA_DIR]   (from the project root, with the venv active)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=results/prune_gemma3_270m
CACHE=${PRUNELENS_RUN_CACHE:-/tmp/prunelens_run_cache}
run() {  # task, sample size, score kind, then method arguments
  local T=$1 N=$2 S=$3; shift 3
  local name=$1; [[ " $* " == *" --skip "* ]] && name=${name}_skip
  prunelens prune --model gemma-3-270m --format cloze --ratio 0.5 --data-dir "$DATA" --tasks "$T" --sample "$N" \
    --seed 0 --score "$S" --cache-dir "$CACHE/$T" --cache-mb 2048 --method "$@" --out "$OUT/$T/$name" \
    2>&1 | tee -a "$OUT/$T/run.log"
}
SPECS=("arc_easy 64 norm" "boolq 100 raw")
for spec in "${SPECS[@]}"; do
  set -- $spec
  mkdir -p "$OUT/$1"
  run $1 $2 $3 iterative --skip
  run $1 $2 $3 shortgpt
  run $1 $2 $3 tail
done
for spec in "${SPECS[@]}"; do
  set -- $spec
  run $1 $2 $3 random --seeds 0,1,2
  prunelens compare "$OUT/$1" --out "$OUT/$1" --overwrite
done
