"""Apply readout_answers' chance guard (2026-12-03) to readout.json files written before it: where the logit or the
tuned lens is not above chance at its final depth, "the tuned lens locates the transition earlier" is not asked
(not enough data). Reads only the stored final accuracies and chance levels; no model is run. A file without chance
levels is skipped: run results/backfill_chance.py first.
Usage: python results/causal/readout_guard.py   (from the project root, venv active)"""
import json
from pathlib import Path

from prunelens.metrics.verdict import NODATA
from prunelens.readout.run import reads_no_decision

for f in sorted(Path("results/causal").rglob("readout.json")):
    r = json.loads(f.read_text())
    a = next((a for a in r["answers"] if a.get("key") == "tuned_earlier"), None)
    if a is None or a["status"] == NODATA or "chance_levels" not in r:
        continue
    why = reads_no_decision(r["readouts"], r["chance_levels"], r["n_samples"])
    if why:
        a.update(status=NODATA, evidence=f"{why} (was: {a['status']}, {a['evidence']})",
                 note="answer recomputed on 2026-12-03 by results/causal/readout_guard.py")
        f.write_text(json.dumps(r, indent=1) + "\n")
        print(f"{f}: tuned_earlier -> {NODATA}: {why}")
