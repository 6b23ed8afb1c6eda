"""Add the held-out check (`plan --verify-holdout`) to the finished plans of this study, without planning again:
each plan's recommended set, and the dense model, on N other questions of its split (prunelens/plan/holdout.py).
Only the plans plan-eval scores are checked (the rule of prunelens/plan/evaluate.py: not at chance, then one plan
per (model, task), the most questions); plans already checked are skipped, so a killed run continues. A plan that
cannot be checked is reported and the others go on.
Usage: python results/plan/holdout.py DATA_DIR [N] (from the project root; N defaults to each plan's own n)."""
import sys
from pathlib import Path

from prunelens.model import load_model
from prunelens.plan.evaluate import scored
from prunelens.plan.holdout import add_to_plan
from prunelens.results import read_json

data, n_arg = sys.argv[1], (int(sys.argv[2]) if len(sys.argv) > 2 else None)
plans = {f.parent: read_json(f) for f in sorted(Path("results/plan").glob("*/*/plan.json"))}
keep, left_out = scored([{"plan": p, "dir": str(d)} for d, p in plans.items()])
for x in left_out:
    print(f"[holdout] {x['dir']}: left out ({x['why']})")
todo = {}
for d in (Path(x["dir"]) for x in keep):
    if plans[d].get("verify_holdout"):
        print(f"[holdout] {d}: done")
    else:
        todo.setdefault(plans[d]["model"], []).append(d)
failed = 0
for model, dirs in todo.items():
    lm = load_model(model)
    for d in dirs:
        try:
            p = add_to_plan(d, lm, n_arg or plans[d]["n_samples"], data_dir=data)
        except (ValueError, OSError) as e:
            print(f"[holdout] {d}: not checked: {e}", flush=True)
            failed += 1
            continue
        h = p["verify_holdout"]
        print(f"[holdout] {d}: removed {h['removed']}; dense {h['dense_acc']:.3f}, without them {h['acc']:.3f}, "
              f"change {h['d_acc']:+.3f} [{h['d_acc_ci'][0]:+.3f}, {h['d_acc_ci'][1]:+.3f}] on {h['n']} held-out "
              f"questions", flush=True)
sys.exit(1 if failed else 0)
