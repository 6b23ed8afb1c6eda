"""Record the gold shares (the accuracy of always giving one option, prunelens.metrics.chance) in result files made
before they were recorded (2026-12-03), from the very questions of each file; no model is run:
- plan.json: `constant_chance` / `constant_option` (and plan.md, whose warning needs them);
- trajectory.json of pruning runs that predate `label_distribution` in their dense record (results/prune_gemma3_270m,
  results/study/trajectories): the dense record gains it;
- restore.json / readout.json / skips.json of results/causal made before they recorded `chance_levels`: the levels of
  the questions their dense accuracy is measured on (run.sh's seeded samples: N = 200, and for readouts trained on
  halves of the evaluation split, the evaluation half of a seeded 2N sample). These files record no samples digest:
  their questions are rebuilt from run.sh's convention and cannot be checked against the run (their notes say so).
Each task is reloaded with the file's split and sample (seed 0, as those runs used); the questions must match the
file's samples digest where it records one, else its number of questions.
Usage: python results/backfill_chance.py DATA_DIR   (from the project root, venv active)"""
import json
import sys
from pathlib import Path

import numpy as np

from prunelens.fingerprint import samples_digest
from prunelens.metrics.chance import chance_levels, option_name
from prunelens.plan.run import summary_md
from prunelens.readout.run import split_samples
from prunelens.results import atomic_write_text
from prunelens.tasks import load_task

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"


def questions(f, task, split, cfg, digest, n):
    t = load_task(task, split=split, data_dir=data, limit=cfg.get("limit"), sample=cfg.get("sample"),
                  seed=cfg.get("seed", 0))
    if (digest and samples_digest(t.samples) != digest) or len(t.samples) != n:
        sys.exit(f"{f}: the reloaded questions differ from the file's: not backfilled")
    return t.samples


for f in sorted(Path("results/plan").glob("*/*/plan.json")):
    p = json.loads(f.read_text())
    if "constant_chance" in p:
        continue
    s = questions(f, p["task"], p.get("split"), p.get("config") or {}, p["fingerprint"]["samples"], p["n_samples"])
    lv = chance_levels([x.gold for x in s], [x.n_options for x in s])
    if abs(lv["uniform"] - p["chance"]) > 1e-9:
        sys.exit(f"{f}: uniform chance {lv['uniform']} differs from the plan's {p['chance']}")
    p["constant_chance"], p["constant_option"] = lv["constant"], lv["constant_option"]
    f.write_text(json.dumps(p, indent=1) + "\n")
    atomic_write_text(f.parent / "plan.md", summary_md(p))    # its warning, where the point is at chance
    print(f"{f}: constant_chance {lv['constant']:.3f} (always option {option_name(lv['constant_option'])})")

for f in sorted([*Path("results/prune_gemma3_270m").rglob("trajectory.json"),
                 *Path("results/study/trajectories").rglob("trajectory.json")]):
    t = json.loads(f.read_text())
    if "label_distribution" in t["dense"]:
        continue
    cfg = {"limit": t.get("limit"), "sample": t.get("sample"), "seed": t.get("seed", 0)}
    s = questions(f, t["task"], t.get("split"), cfg, (t.get("fingerprint") or {}).get("samples"), t["n_samples"])
    gold = np.array([x.gold for x in s])
    t["dense"]["label_distribution"] = (np.bincount(gold, minlength=max(x.n_options for x in s)) / len(s)).tolist()
    f.write_text(json.dumps(t, indent=1) + "\n")
    print(f"{f}: label_distribution {[round(v, 3) for v in t['dense']['label_distribution']]}")

NOTE = ("backfilled on 2026-12-03 by results/backfill_chance.py: the questions reloaded from the run's task, split and "
        "seeded sample (results/causal/run.sh), not read from the run")
for f in sorted([*Path("results/causal").glob("*/*/*/restore.json"), *Path("results/causal").glob("*/*/*/readout.json"),
                 *Path("results/causal").glob("*/*/*/skips.json")]):
    r = json.loads(f.read_text())
    if "chance_levels" in r:
        continue
    n, src = r["n_samples"], r.get("train_source")
    if f.name == "readout.json" and src == f"{r['split']} split, seeded halves":
        t = load_task(r["task"], split=r["split"], data_dir=data, sample=2 * n, seed=0)
        s = split_samples(t.samples, None, 0)[1]
    elif f.name != "readout.json" or (src and src.endswith(" split") and not src.startswith(r["split"])):
        s = load_task(r["task"], split=r["split"], data_dir=data, sample=n, seed=0).samples
    else:
        sys.exit(f"{f}: readout trained on {src!r}, a form run.sh does not use: not backfilled")
    r["chance_levels"] = chance_levels([x.gold for x in s], [x.n_options for x in s])
    r["chance_levels_note"] = NOTE
    f.write_text(json.dumps(r, indent=1) + "\n")
    print(f"{f}: chance_levels uniform {r['chance_levels']['uniform']:.3f}, constant {r['chance_levels']['constant']:.3f}")
