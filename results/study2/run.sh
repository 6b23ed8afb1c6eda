#!/bin/bash
# The study of issue 11 on both built-in models (Gemma-3-270M, SmolLM2-135M-Instruct): cloze format, acc_norm
# (`--score norm`) in every part, and the letter format where a model is above chance on it.
# Parts run in priority order, cheapest decisive first, one at a time (2 cores): SmolLM2 before Gemma in each part
# (its lens costs ~0.3x Gemma's: vocabulary 49k vs 262k). A part whose output already exists is skipped and `prune`
# resumes inside a part, so rerunning the script continues where it stopped. Wall times go to timings.csv.
# Usage: bash results/study2/run.sh [DATA_DIR] [PART...]   (from the project root, venv active)
#   PART: dense letter ablation noise prune controls cka recovery correlate report (default: all, in this order)
set -euo pipefail
DATA=${1:-../shared/data}
shift || true
PARTS=${*:-dense letter ablation noise prune controls cka recovery correlate report}
OUT=results/study2
N=${STUDY_N:-400}                 # questions per task, dense lens and ablation: accuracy CI half-width <= 0.05
NT=${STUDY_NT:-200}               # questions per task, pruning trajectories and controls
CACHE=${PRUNELENS_RUN_CACHE:-/tmp/prunelens_run_cache}
MODELS=(${STUDY_MODELS:-smollm2-135m gemma-3-270m})    # STUDY_MODELS / STUDY_PRUNE_TASKS / STUDY_PRUNE_METHODS:
                                                      # run a subset first (results/causal needs some trajectories)
# cheapest first (short continuations before long ones): a session that stops mid-way loses the fewest finished parts
TASKS=(${STUDY_TASKS:-arc_easy arc_challenge openbookqa boolq mmlu winogrande piqa hellaswag})
# IP+SKIP candidates, in this order: the first PRUNE_MAX on which the model's dense accuracy CI lies above chance (at
# chance "halfway to chance" is inside the noise and the critical ratio means nothing; `above_chance`)
PRUNE_TASKS=(${STUDY_PRUNE_TASKS:-arc_easy arc_challenge piqa boolq openbookqa hellaswag})
PRUNE_MAX=${STUDY_PRUNE_MAX:-5}
CONTROL_MAX=${STUDY_CONTROL_MAX:-4}       # controls (part 6): the first four of a model's pruned tasks
CONTROL_TASKS=(${STUDY_CONTROL_TASKS:-})  # or exactly these
mkdir -p "$OUT"
[[ -f $OUT/timings.csv ]] || echo "part,seconds,finished_utc" > "$OUT/timings.csv"

want() { [[ " $PARTS " == *" $1 "* ]]; }
TAG=study2
source "$(dirname "$0")/../part.sh"     # part NAME DONE_FILE COMMAND...
M() { echo --model "$1" --data-dir "$DATA" --seed 0; }

# Exit 0 when the dense run's accuracy CI lies above chance (both levels of metrics/chance.py: the mean of 1/options
# and the accuracy of always giving one option), 1 when not, 2 when the dense run does not exist yet; why on stderr.
above_chance() {
  [[ -f $OUT/$1/dense/$2/analysis.json ]] || return 2
  local rc=0
  python results/gate.py run-above-chance "$OUT/$1/dense/$2" >&2 || rc=$?
  (( rc <= 1 )) || { echo "[study2] cannot tell whether $1 is above chance on $2; stopping" >&2; exit 3; }
  return $rc
}

# The tasks a model is pruned on (PRUNE_TASKS order, at most PRUNE_MAX, each above chance); the skipped on stderr.
prune_tasks() {
  local MD=$1 T n=0 rc
  for T in "${PRUNE_TASKS[@]}"; do
    (( n < PRUNE_MAX )) || break
    rc=0; above_chance "$MD" "$T" 2>/dev/null || rc=$?
    case $rc in
      0) echo "$T"; n=$((n + 1));;
      1) echo "[study2] prune $MD $T: skipped, not above chance ($(above_chance "$MD" "$T" 2>&1))" >&2;;
      *) echo "[study2] prune $MD $T: waiting for its dense run (part dense)" >&2;;
    esac
  done
}

# 1. The dense decision lens with every transition estimator, cloze / acc_norm, every task, both models.
if want dense; then
  for MD in "${MODELS[@]}"; do for T in "${TASKS[@]}"; do
    part "dense_${MD}_$T" "$OUT/$MD/dense/$T/analysis.json" \
      prunelens analyze $(M "$MD") --format cloze --score norm --tasks "$T" --sample "$N" --overwrite \
        --out "$OUT/$MD/dense/$T"
  done; done
fi

# 2. The letter format (the paper's), on ARC-Easy first; on every other task only for a model whose ARC-Easy letter
#    accuracy CI lies above chance (results/gate.py): below chance there is no decision for the lens to find.
if want letter; then
  for MD in "${MODELS[@]}"; do
    part "letter_${MD}_arc_easy" "$OUT/$MD/letter/arc_easy/analysis.json" \
      prunelens analyze $(M "$MD") --format letter --tasks arc_easy --sample "$N" --overwrite \
        --out "$OUT/$MD/letter/arc_easy"
    rc=0; python results/gate.py run-above-chance "$OUT/$MD/letter/arc_easy" || rc=$?
    (( rc <= 1 )) || { echo "[study2] cannot tell whether $MD is above chance in the letter format; stopping" >&2; exit 1; }
    if (( rc == 0 )); then
      for T in "${TASKS[@]:1}"; do
        part "letter_${MD}_$T" "$OUT/$MD/letter/$T/analysis.json" \
          prunelens analyze $(M "$MD") --format letter --tasks "$T" --sample "$N" --overwrite \
            --out "$OUT/$MD/letter/$T"
      done
    else
      echo "[study2] letter: $MD is not above chance on ARC-Easy; letter format stops there"
    fi
  done
fi

# Where to ablate (Table 1): the median of the identified mean-DM TPs, else of the identified decision-depth
# medians (prediction rule), else of every task's decision-depth median, over the tasks given (comma-separated; the
# ones ablated, which are above chance: a depth where an at-chance model's answer settles is no decision), else over
# every dense run. Prints the depth and why.
pick_tp() {
  python - "$OUT/$1/dense" "${2:-}" <<'EOF'
import json, statistics, sys
from pathlib import Path
only = set(filter(None, sys.argv[2].split(",")))
runs = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*/analysis.json"))
        if not only or p.parent.name in only]
for key, only_identified in (("mean_dm_tp", True), ("decision_depth_pred", True), ("decision_depth_pred", False)):
    pts = [r["estimators"][key]["point"] for r in runs
           if r["estimators"][key]["point"] is not None
           and (r["estimators"][key]["verdict"] == "identified" or not only_identified)]
    if pts:
        print(int(statistics.median(pts)), key, "identified" if only_identified else "any", len(pts), file=sys.stderr)
        print(int(statistics.median(pts)))
        break
EOF
}

# 3. Table 1: single layers and adjacent pairs around that depth, on the dense samples (dense rows reused), on the
#    tasks where the model's dense accuracy CI lies above chance (design change of 2026-12-08, stated in the README:
#    a layer's effect on a model that decides nothing is noise, and those tasks were half the part's CPU).
# Exit 0 with the tasks on stdout, 1 while a dense run is missing; a gate that cannot answer stops (exit 3 inside
# above_chance, its message on stderr).
ablate_tasks() {
  local MD=$1 T rc
  for T in "${TASKS[@]}"; do
    rc=0; above_chance "$MD" "$T" 2>/dev/null || rc=$?
    case $rc in
      0) echo "$T";;
      1) echo "[study2] ablation $MD $T: left out, not above chance" >&2;;
      2) echo "[study2] ablation $MD: waiting for the dense run of $T (part dense)" >&2; return 1;;
      *) above_chance "$MD" "$T"; return 3;;      # again, to show why it cannot tell (it exits 3)
    esac
  done
}
# The comma-separated tasks of ablate_tasks in TL; returns 1 while a dense run is missing, stops on a broken gate.
above_chance_list() {
  local rc=0
  TL=$(ablate_tasks "$1") || rc=$?
  (( rc <= 1 )) || { echo "[study2] $1: cannot tell which tasks are above chance; stopping" >&2; exit 1; }
  TL=$(paste -sd, <<< "$TL")
  return $rc
}
if want ablation; then
  for MD in "${MODELS[@]}"; do
    above_chance_list "$MD" || { echo "[study2] ablation_$MD: not started"; continue; }
    [[ -n $TL ]] || { echo "[study2] ablation_$MD: no task above chance, nothing to ablate"; continue; }
    TP=; [[ -f $OUT/$MD/ablation/ablation.json ]] || TP=$(pick_tp "$MD" "$TL")
    part "ablation_$MD" "$OUT/$MD/ablation/ablation.json" \
      prunelens ablate $(M "$MD") --format cloze --score norm --tasks "$TL" --sample "$N" --tp "$TP" \
        --dense-from "$OUT/$MD/dense" --overwrite --out "$OUT/$MD/ablation"
  done
fi

# 4. Noise (Figures 6, 18) on ARC-Easy: small alphas, depths spread over the network, two seeds.
if want noise; then
  for MD in "${MODELS[@]}"; do
    L=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['num_layers'])" "$OUT/$MD/dense/arc_easy/analysis.json")
    DEPTHS=$(python -c "import sys; L=int(sys.argv[1]); print(','.join(str(round(L*f)) for f in (0,.2,.4,.55,.7,.85,1)))" "$L")
    # the phase split at the ablation's depth (pick_tp over the tasks above chance)
    above_chance_list "$MD" || { echo "[study2] noise_$MD: not started"; continue; }
    part "noise_$MD" "$OUT/$MD/noise/noise.json" \
      prunelens noise $(M "$MD") --format cloze --score norm --tasks arc_easy --sample "$N" --tp "$(pick_tp "$MD" "$TL")" \
        --alphas 0.02,0.1,0.5 --depths "$DEPTHS" --seeds 0,1 --overwrite --out "$OUT/$MD/noise"
  done
fi

# 5. IP (+SKIP-Prun) to 50% on five tasks per model (n = NT), every state at every depth. One-shot ShortGPT and the
#    tail are final-depth controls in part 6 (their accuracy is all the study reads of them; an all-depth trajectory
#    of each would cost ~L+1 times as much). STUDY_PRUNE_METHODS="shortgpt" etc. runs that method instead of IP.
if want prune; then
  for MD in "${MODELS[@]}"; do PT=$(prune_tasks "$MD") || exit 1; for T in $PT; do
    METHODS=("iterative --skip")
    [[ -n ${STUDY_PRUNE_METHODS:-} ]] && METHODS=("${STUDY_PRUNE_METHODS}")
    for METHOD in "${METHODS[@]}"; do
      name=${METHOD%% *}; [[ $METHOD == *--skip* ]] && name=${name}_skip
      part "prune_${MD}_${T}_$name" "$OUT/$MD/prune/$T/$name/trajectory.json" \
        prunelens prune $(M "$MD") --format cloze --score norm --tasks "$T" --sample "$NT" --ratio 0.5 \
          --method $METHOD --cache-dir "$CACHE/study2_${MD}_$T" --cache-mb 2048 --out "$OUT/$MD/prune/$T/$name"
    done
  done; done
fi

# 6. Controls at the IP trajectory's layer counts, final depth: random (3 seeds), one-shot ShortGPT, Gromov's
#    angular block, the tail.
if want controls; then
  for MD in "${MODELS[@]}"; do
    PT=$(prune_tasks "$MD" 2>/dev/null) || exit 1
    CT=("${CONTROL_TASKS[@]}"); (( ${#CT[@]} )) || CT=($(head -n "$CONTROL_MAX" <<< "$PT"))
    for T in "${CT[@]}"; do
    if ! finished "$OUT/$MD/prune/$T/iterative_skip/trajectory.json"; then
      echo "[study2] controls_${MD}_$T: waiting for its IP trajectory (part prune)"; continue
    fi
    # the controls read the trajectory's own questions: where its dense model is at chance on them (SmolLM2
    # OpenBookQA, Gemma HellaSwag at n = 200), every claim leaves the controls out, so they are not run (README)
    if [[ ! -f $OUT/$MD/prune/$T/controls/controls.json ]]; then
      rc=0; why=$(python results/gate.py trajectory-above-chance "$OUT/$MD/prune/$T/iterative_skip/trajectory.json") || rc=$?
      (( rc <= 1 )) || { echo "[study2] controls_${MD}_$T: cannot tell whether its trajectory is above chance; stopping" >&2; exit 1; }
      if (( rc == 1 )); then echo "[study2] controls_${MD}_$T: left out, trajectory at chance ($why)" | tee -a "$OUT/run.log"; continue; fi
    fi
    part "controls_${MD}_$T" "$OUT/$MD/prune/$T/controls/controls.json" \
      prunelens controls $(M "$MD") --format cloze --score norm --tasks "$T" --sample "$NT" --seeds 0,1,2 \
        --trajectory "$OUT/$MD/prune/$T/iterative_skip/trajectory.json" --overwrite --out "$OUT/$MD/prune/$T/controls"
  done; done
fi

# 7. CKA (Figure 3) of the 50% IP model against the dense one, ARC-Easy.
if want cka; then
  for MD in "${MODELS[@]}"; do
    part "cka_$MD" "$OUT/$MD/cka/cka.json" \
      prunelens cka $(M "$MD") --format cloze --score norm --tasks arc_easy --sample 100 \
        --trajectory "$OUT/$MD/prune/arc_easy/iterative_skip/trajectory.json" --ratio 0.5 --overwrite --out "$OUT/$MD/cka"
  done
fi

# 8. Recovery (Figure 7): LoRA on the ARC-Easy train split, evaluated on the disjoint validation split.
if want recovery; then
  for MD in "${MODELS[@]}"; do
    part "recovery_$MD" "$OUT/$MD/recovery/recovery.json" \
      prunelens recover --model "$MD" --format cloze --score norm --data-dir "$DATA" --train-task arc_easy \
        --train-split train --n-train 256 --eval-task arc_easy --eval-split validation --n-eval 200 \
        --trajectory "$OUT/$MD/prune/arc_easy/iterative_skip/trajectory.json" --ratios 0.25,0.375,0.5 --mode lora \
        --train-steps 60 --final-only --overwrite --out "$OUT/$MD/recovery"
  done
fi

# 9. Figure 8 over every (model, task) IP trajectory, then the report.
if want correlate; then
  prunelens correlate "$OUT"/*/prune results/prune_gemma3_270m --method iterative+skip --overwrite \
    --out "$OUT/correlation" | tee -a "$OUT/run.log"
fi
if want report; then
  prunelens report "$OUT"/smollm2-135m "$OUT"/gemma-3-270m "$OUT/correlation" \
    --title "prunelens study 2: Gemma-3-270M and SmolLM2-135M-Instruct, cloze" --overwrite --out "$OUT/report"
  cp "$OUT/report/report.html" "$OUT/report.html"   # --out is a folder (DIR/report.html)
fi
