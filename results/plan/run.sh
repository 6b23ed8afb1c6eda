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
[[ -f $OUT/timings.csv ]] || echo "part,seconds,finished_utc" > "$OUT/timings.csv"

# model task n score split trajectories-folder (the trajectories' own sample: same --sample/--seed, same questions)
POINTS=("gemma-3-270m arc_easy 64 norm test results/prune_gemma3_270m/arc_easy"
        "gemma-3-270m boolq 100 raw validation results/prune_gemma3_270m/boolq"
        "gemma-3-270m piqa 64 norm validation results/study/trajectories/piqa")
for M in smollm2-135m gemma-3-270m; do for T in arc_easy arc_challenge piqa boolq openbookqa hellaswag; do
  POINTS+=("$M $T 200 norm default results/study2/$M/prune/$T")
done; done

# The dense transition depth, for the phase labels only: the study2 dense run's estimators when it exists, else the
# trajectory's dense TP; empty: plan runs the full-depth lens itself.
tp_of() {
  python - "$@" <<'PY'
import json, sys
from pathlib import Path
M, T, traj = sys.argv[1:4]
dense = Path(f"results/study2/{M}/dense/{T}")
if (dense / "analysis.json").is_file():
    from prunelens.analyze import transition_from_run
    e = transition_from_run(dense, write=False)["estimators"]
    for k in ("mean_dm_tp", "decision_depth_pred"):
        if e[k]["point"] is not None and (e[k]["verdict"] == "identified" or k == "decision_depth_pred"):
            print(e[k]["point"]); break
else:
    t = json.loads((Path(traj) / "iterative_skip" / "trajectory.json").read_text())
    tp = (t.get("dense") or {}).get("transition_point")
    print("" if tp is None else tp)
PY
}

for P in "${POINTS[@]}"; do
  read -r M T N S SPLIT TRAJ <<< "$P"
  D=$OUT/$M/${T}_n$N          # one folder per question set: the same task is a point per sample it was pruned on
  if [[ -f $D/plan.json ]]; then echo "[plan] $M $T: done"; continue; fi
  if [[ ! -f $TRAJ/iterative_skip/trajectory.json ]]; then echo "[plan] $M $T: waiting for $TRAJ"; continue; fi
  # A point whose trajectory's dense model is at chance (results/gate.py: the rule of Figure 8 and plan-eval,
  # metrics.chance.judge) is not planned: plan-eval would leave it out of every score.
  rc=0; why=$(python results/gate.py trajectory-above-chance "$TRAJ/iterative_skip/trajectory.json") || rc=$?
  if (( rc == 1 )); then echo "[plan] $M $T: left out, at chance: $why"; continue; fi
  (( rc == 0 )) || { echo "[plan] $M $T: cannot tell whether it is above chance (see above); stopping" >&2; exit 1; }
  TP=$(tp_of "$M" "$T" "$TRAJ")
  SPL=(); [[ $SPLIT != default ]] && SPL=(--split "$SPLIT")
  echo "[plan] $M $T (n=$N, score $S, tp=${TP:-measured})"
  t0=$SECONDS
  prunelens plan --model "$M" --data-dir "$DATA" --tasks "$T" "${SPL[@]}" --format cloze --score "$S" --sample "$N" \
    --seed 0 ${TP:+--tp "$TP"} --max-drop 0.05 --verify --verify-curve --out "$D" 2>&1 | tee -a "$OUT/run.log"
  echo "plan_${M}_$T,$((SECONDS - t0)),$(date -u +%FT%TZ)" >> "$OUT/timings.csv"
done
TRAJS=$(ls -d results/prune_gemma3_270m results/study/trajectories results/study2/*/prune 2>/dev/null || true)
prunelens plan-eval --plans "$OUT"/smollm2-135m "$OUT"/gemma-3-270m --trajectories $TRAJS --overwrite \
  --out "$OUT/evaluation" 2>&1 | tee -a "$OUT/run.log" || true
