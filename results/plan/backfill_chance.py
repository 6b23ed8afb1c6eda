"""Add `constant_chance` (the accuracy of always giving the best option position, prunelens.metrics.chance) to the
plan.json (and plan.md) files made before plans recorded it (2026-12-03), from the very questions of each plan: the task is loaded
with the plan's split and sample, and its samples' digest must equal the plan's fingerprint. No model is run.
Usage: python results/plan/backfill_chance.py DATA_DIR   (from the project root, venv active)"""
import json
import sys
from pathlib import Path

from prunelens.fingerprint import samples_digest
from prunelens.metrics.chance import chance_levels
from prunelens.plan.run import summary_md
from prunelens.results import atomic_write_text
from prunelens.tasks import load_task

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
for f in sorted(Path("results/plan").glob("*/*/plan.json")):
    p = json.loads(f.read_text())
    if "constant_chance" in p:
        continue
    cfg = p.get("config") or {}
    t = load_task(p["task"], split=p.get("split"), data_dir=data, limit=cfg.get("limit"), sample=cfg.get("sample"),
                  seed=cfg.get("seed", 0))
    if samples_digest(t.samples) != p["fingerprint"]["samples"]:
        sys.exit(f"{f}: the loaded questions differ from the plan's (fingerprint): not backfilled")
    lv = chance_levels([s.gold for s in t.samples], [s.n_options for s in t.samples])
    if abs(lv["uniform"] - p["chance"]) > 1e-9:
        sys.exit(f"{f}: uniform chance {lv['uniform']} differs from the plan's {p['chance']}")
    p["constant_chance"], p["constant_option"] = lv["constant"], lv["constant_option"]
    f.write_text(json.dumps(p, indent=1) + "\n")
    atomic_write_text(f.parent / "plan.md", summary_md(p))    # its warning, where the point is at chance
    print(f"{f}: constant_chance {lv['constant']:.3f} (always option {lv['constant_option']})")
