"""Add the held-out check (`plan --verify-holdout`) to the finished plans of this study, without planning again:
each plan's recommended set, and the dense model, on N other questions of its split (prunelens/plan/holdout.py).
Plans plan-eval does not score (at chance, or a second sample of a pair) and plans already checked are skipped, so a killed run continues.
Usage: python results/plan/holdout.py DATA_DIR [N] (from the project root; N defaults to each plan's own n)."""
import sys
from pathlib import Path

from prunelens.model import load_model
from prunelens.plan.evaluate import at_chance
from prunelens.plan.holdout import add_to_plan
from prunelens.results import read_json

data, n_arg = sys.argv[1], (int(sys.argv[2]) if len(sys.argv) > 2 else None)
todo = {}
plans = {f: read_json(f) for f in sorted(Path("results/plan").glob("*/*/plan.json"))}
most = {}                                 # plan-eval scores one plan per (model, task): the most questions
for f, p in plans.items():
    most[p["model"], p["task"]] = max(most.get((p["model"], p["task"]), 0), p["n_samples"])
for f, p in plans.items():
    if p["n_samples"] < most[p["model"], p["task"]]:
        print(f"[holdout] {f.parent}: left out, plan-eval scores another sample of {p['model']} {p['task']}")
    elif p.get("verify_holdout"):
        print(f"[holdout] {f.parent}: done")
    elif why := at_chance(p):
        print(f"[holdout] {f.parent}: left out, at chance ({why})")
    else:
        todo.setdefault(p["model"], []).append(f.parent)
for model, dirs in todo.items():
    lm = load_model(model)
    for d in dirs:
        p = add_to_plan(d, lm, n_arg or read_json(d / "plan.json")["n_samples"], data_dir=data)
        h = p["verify_holdout"]
        print(f"[holdout] {d}: removed {h['removed']}; dense {h['dense_acc']:.3f}, without them {h['acc']:.3f}, "
              f"change {h['d_acc']:+.3f} [{h['d_acc_ci'][0]:+.3f}, {h['d_acc_ci'][1]:+.3f}] on {h['n']} held-out "
              f"questions", flush=True)
