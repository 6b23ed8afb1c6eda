"""Add the held-out check (`plan --verify-holdout`) to the finished plans of this study, without planning again:
each plan's recommended set, and the dense model, on N other questions of its split (prunelens/plan/holdout.py).
Only the plans plan-eval scores are checked (the rule of prunelens/plan/evaluate.py: not at chance, then one plan
per (model, task), the most questions); plans already checked are skipped, so a killed run continues. A plan that
cannot be checked is reported and the others go on.
Usage: python results/plan/holdout.py DATA_DIR [N] (from the project root; N defaults to each plan's own n)."""
import sys
from pathlib import Path

from prunelens.model import load_model
from prunelens.plan.evaluate import at_chance
from prunelens.plan.holdout import add_to_plan
from prunelens.results import read_json

data, n_arg = sys.argv[1], (int(sys.argv[2]) if len(sys.argv) > 2 else None)
plans = {f.parent: read_json(f) for f in sorted(Path("results/plan").glob("*/*/plan.json"))}
pair = lambda p: (Path(str(p["model"])).name, p["task"])                                  # noqa: E731
scored = {}
for d, p in sorted(plans.items(), key=lambda kv: (-kv[1]["n_samples"], str(kv[0]))):
    if why := at_chance(p):
        print(f"[holdout] {d}: left out, at chance ({why})")
    elif pair(p) in scored:
        print(f"[holdout] {d}: left out, plan-eval scores another sample of {' '.join(pair(p))} ({scored[pair(p)]})")
    else:
        scored[pair(p)] = d
todo = {}
for d in scored.values():
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
