#!/bin/bash
# The study of issue 4 on Gemma-3-270M, cloze format, acc_norm (`--score norm`) everywhere, so that every part
# measures states the same way as results/prune_gemma3_270m (ARC-Easy there is --score norm, n=64).
# Parts run in priority order, one at a time (2 cores). A part whose JSON already exists is skipped, and `prune`
# resumes inside a part, so rerunning the script continues where it stopped. Wall times go to timings.csv.
# Usage: bash results/study/run.sh [DATA_DIR]   (from the project root, with the venv active)
set -euo pipefail
DATA=${1:-../shared/data}
OUT=results/study
N=${STUDY_N:-100}                 # questions per task for the dense lens and the ablation (same samples)
NT=${STUDY_NT:-64}                # questions per task for the pruning trajectories (as results/prune_gemma3_270m)
CACHE=${PRUNELENS_RUN_CACHE:-/tmp/prunelens_run_cache}
M=(--model gemma-3-270m --format cloze --score norm --data-dir "$DATA" --seed 0)
TASKS=(arc_easy arc_challenge piqa hellaswag)
mkdir -p "$OUT"
[[ -f $OUT/timings.csv ]] || echo "part,seconds,finished_utc" > "$OUT/timings.csv"

TAG=study
source "$(dirname "$0")/../part.sh"     # part NAME DONE_FILE COMMAND...
tp_arg() {  # --tp from a finished analyze run; nothing when that run has no TP (noise then measures it itself)
  python -c "import json,sys; t=json.load(open(sys.argv[1]))['transition_point']; print('' if t is None else
f'--tp={t}')" "$1"; }

# 1. The decision lens on each task (DM, OF/KL, accuracy by depth, Transition Point).
for T in "${TASKS[@]}"; do
  part "analyze_$T" "$OUT/dense/$T/analysis.json" \
    prunelens analyze "${M[@]}" --tasks "$T" --sample "$N" --out "$OUT/dense/$T"
done

# How firmly n questions fix each TP: question-bootstrap CI, added to each analysis.json (no model needed).
prunelens transition "$OUT"/dense/* --write | tee -a "$OUT/run.log"

# 2. Table 1: single layers and adjacent pairs around the median TP, on the same samples (dense rows reused).
IFS=,; TL="${TASKS[*]}"; unset IFS
part ablation "$OUT/ablation/ablation.json" \
  prunelens ablate "${M[@]}" --tasks "$TL" --sample "$N" --dense-from "$OUT/dense" --out "$OUT/ablation"

# 3. Noise (Figures 6/18) at small alpha, where depths can differ (alpha >= 1 destroyed every depth in the pilot).
part noise "$OUT/noise/noise.json" \
  prunelens noise "${M[@]}" --tasks arc_easy --sample "$N" $(tp_arg "$OUT/dense/arc_easy/analysis.json") \
    --alphas 0.02,0.1,0.5 --depths 0,4,8,12,14,16,18 --seeds 0,1 --out "$OUT/noise"

# 4. CKA (Figures 3, 10, 11) of the 50% IP-pruned model against the dense one.
IP_AE=results/prune_gemma3_270m/arc_easy/iterative_skip/trajectory.json
part cka "$OUT/cka/cka.json" \
  prunelens cka "${M[@]}" --tasks arc_easy --sample "$N" --trajectory "$IP_AE" --ratio 0.5 --out "$OUT/cka"

# 5. Recovery (Figure 7): LoRA on the ARC-Easy test split, evaluated on the disjoint validation split, at the IP
#    removal sets of three ratios.
part recovery "$OUT/recovery/recovery.json" \
  prunelens recover --model gemma-3-270m --format cloze --score norm --data-dir "$DATA" --train-task arc_easy --train-split test \
    --n-train 256 --eval-task arc_easy --eval-split validation --n-eval "$N" --trajectory "$IP_AE" \
    --ratios 0.22,0.33,0.5 --mode lora --train-steps 60 --final-only --out "$OUT/recovery"

# 6. IP (+SKIP-Prun) trajectories on more tasks for the critical-ratio correlation, each with the random control
#    at the same layer counts (3 seeds) and one-shot ShortGPT. ARC-Easy and BoolQ are in results/prune_gemma3_270m.
#    Last because they are the longest (HellaSwag's 4 long endings cost ~4x ARC's per step).
for T in piqa arc_challenge hellaswag; do
  part "prune_$T" "$OUT/trajectories/$T/iterative_skip/trajectory.json" \
    prunelens prune "${M[@]}" --tasks "$T" --sample "$NT" --method iterative --skip --ratio 0.5 \
      --cache-dir "$CACHE/study_$T" --cache-mb 2048 --out "$OUT/trajectories/$T/iterative_skip"
  part "controls_$T" "$OUT/trajectories/$T/controls/controls.json" \
    prunelens controls "${M[@]}" --tasks "$T" --sample "$NT" --seeds 0,1,2 \
      --trajectory "$OUT/trajectories/$T/iterative_skip/trajectory.json" --out "$OUT/trajectories/$T/controls"
done

# 7. Correlation over every IP trajectory (one point per task), then the report.
prunelens correlate results/prune_gemma3_270m "$OUT/trajectories" --method iterative+skip --out "$OUT/correlation" --overwrite
# Named parts only: the raw-score pilot in pilot_raw/ measured differently and must not mix into the report.
prunelens report "$OUT"/{dense,ablation,noise,cka,recovery,trajectories,correlation} results/prune_gemma3_270m \
  --title "prunelens study: Gemma-3-270M, cloze" --out "$OUT/report" --overwrite
cp "$OUT/report/report.html" "$OUT/report.html"   # --out is a folder; the study's README links report.html here
