#!/bin/bash
# The evaluation of `prunelens plan` (issue 13): one plan per (model, task) that has finished pruning trajectories,
# on the very questions of those trajectories, verified (--verify: the recommended set; --verify-curve: every prefix
# of its order), then `plan-eval` leave-one-(model, task)-out against the trajectories and the rules of thumb.
# Resumable: a point whose plan.json exists is skipped; a point whose trajectory does not exist yet waits.
# Usage: bash results/plan/run.sh [DATA_DIR]   (from the project root, venv active)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=results/plan
mkdir -p "$OUT"
source "$(dirname "$0")/../part.sh"     # finished FILE
[[ -f $OUT/timings.csv ]] || echo "part,seconds,finished_utc" > "$OUT/timings.csv"

# model task n score split trajectories-folder (the trajectories' own sample: same --sample/--seed, same questions)
POINTS=("gemma-3-270m arc_easy 64 norm test results/prune_gemma3_270m/arc_easy"
        "gemma-3-270m boolq 100 raw validation results/prune_gemma3_270m/boolq"
        "gemma-3-270m piqa 64 norm validation results/study/trajectories/piqa")
for M in smollm2-135m gemma-3-270m; do for T in arc_easy arc_challenge piqa boolq openbookqa hellaswag; do
  POINTS+=("$M $T 200 norm default results/study2/$M/prune/$T")
done; done

# The dense transition depth, for the phase labels only: the study2 dense run's (`--tp-from`: its mean-DM TP where
# identified, else its decision depth, metrics.estimators.phase_depth; plan.json records which and its verdict), else
# the trajectory's dense TP (`--tp`); neither: plan runs the full-depth lens itself.
tp_args() {
  local M=$1 T=$2 TRAJ=$3
  if [[ -f results/study2/$M/dense/$T/analysis.json ]]; then echo "--tp-from results/study2/$M/dense/$T"; return; fi
  python - "$TRAJ" <<'PY'
import json, sys
from pathlib import Path
t = json.loads((Path(sys.argv[1]) / "iterative_skip" / "trajectory.json").read_text())
tp = (t.get("dense") or {}).get("transition_point")
print("" if tp is None else f"--tp {tp}")
PY
}

for P in "${POINTS[@]}"; do
  read -r M T N S SPLIT TRAJ <<< "$P"
  D=$OUT/$M/${T}_n$N          # one folder per question set: the same task is a point per sample it was pruned on
  if [[ -f $D/plan.json ]]; then echo "[plan] $M $T: done"; continue; fi
  if ! finished "$TRAJ/iterative_skip/trajectory.json"; then echo "[plan] $M $T: waiting for $TRAJ"; continue; fi
  # A point whose trajectory's dense model is at chance (results/gate.py: the rule of Figure 8 and plan-eval,
  # metrics.chance.judge) is not planned: plan-eval would leave it out of every score.
  rc=0; why=$(python results/gate.py trajectory-above-chance "$TRAJ/iterative_skip/trajectory.json") || rc=$?
  if (( rc == 1 )); then echo "[plan] $M $T: left out, at chance: $why"; continue; fi
  (( rc == 0 )) || { echo "[plan] $M $T: cannot tell whether it is above chance (see above); stopping" >&2; exit 1; }
  TPA=($(tp_args "$M" "$T" "$TRAJ"))
  SPL=(); [[ $SPLIT != default ]] && SPL=(--split "$SPLIT")
  echo "[plan] $M $T (n=$N, score $S, ${TPA[*]:-transition depth measured})"
  t0=$SECONDS
  prunelens plan --model "$M" --data-dir "$DATA" --tasks "$T" "${SPL[@]}" --format cloze --score "$S" --sample "$N" \
    --seed 0 "${TPA[@]}" --max-drop 0.05 --verify --verify-curve --out "$D" 2>&1 | tee -a "$OUT/run.log"
  echo "plan_${M}_$T,$((SECONDS - t0)),$(date -u +%FT%TZ)" >> "$OUT/timings.csv"
done
# The recommended sets on questions they were not chosen on (--verify is in-sample): as many other questions as
# each plan was made on, for the plans plan-eval scores.
python results/plan/holdout.py "$DATA" 2>&1 | tee -a "$OUT/run.log" || true    # a plan it cannot check: said, not fatal
TRAJS=$(ls -d results/prune_gemma3_270m results/study/trajectories results/study2/*/prune 2>/dev/null || true)
prunelens plan-eval --plans "$OUT"/smollm2-135m "$OUT"/gemma-3-270m --trajectories $TRAJS --overwrite \
  --out "$OUT/evaluation" 2>&1 | tee -a "$OUT/run.log" || true
