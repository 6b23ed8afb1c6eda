"""Record which estimator gave each stored plan's transition depth (plan.json `tp_source`: "given (--tp)" in plans
made before `--tp-from`). It replays the choice made when each plan was run, without a model: the study2 dense run's
estimators through `metrics.estimators.phase_depth` for the study2 points; for the three older points (n = 64 / 100,
results/prune_gemma3_270m and results/study) the trajectory's dense mean-DM TP, with the verdict `identify` gives its
stored CI ("not checked" where none is stored). A replayed depth that differs from the stored one is an error (the
file is left as it is), so the source is never guessed. Idempotent: a backfilled source is recomputed.
Usage: python results/plan/backfill_tp_source.py   (from the project root)"""
import json
import sys
from pathlib import Path

from prunelens.analyze import transition_from_run
from prunelens.metrics.estimators import identify, phase_depth
from prunelens.results import write_json

OLDER = {("gemma-3-270m", "arc_easy_n64"): "results/prune_gemma3_270m/arc_easy",
         ("gemma-3-270m", "boolq_n100"): "results/prune_gemma3_270m/boolq",
         ("gemma-3-270m", "piqa_n64"): "results/study/trajectories/piqa"}
TAG = "given as --tp (backfilled by results/plan/backfill_tp_source.py)"


def replay(model: str, point: str):
    """(depth, source) as the plan was given it, or (None, why not)."""
    task = point.rsplit("_n", 1)[0]
    if (model, point) in OLDER:
        t = json.loads((Path(OLDER[(model, point)]) / "iterative_skip" / "trajectory.json").read_text())
        d = t.get("dense") or {}
        tp, ci = d.get("transition_point"), d.get("tp_ci")
        verdict = identify(ci, t["num_layers"])[0] if ci else "not checked, no CI stored"
        return tp, f"mean_dm_tp ({verdict}) of the trajectory's dense model, {OLDER[(model, point)]}"
    dense = Path(f"results/study2/{model}/dense/{task}")
    if not (dense / "analysis.json").is_file():
        return None, f"no dense run {dense} to replay from"
    pd_ = phase_depth(transition_from_run(dense).get("estimators"))
    return (None, f"no depth in {dense}") if pd_ is None else (pd_["depth"], f"{pd_['source']} of {dense}")


def main() -> int:
    bad = 0
    for f in sorted(Path("results/plan").glob("*/*/plan.json")):
        p = json.loads(f.read_text())
        if p.get("tp_source") != "given (--tp)" and TAG not in str(p.get("tp_source")):
            continue
        depth, src = replay(f.parent.parent.name, f.parent.name)
        if depth is None or depth != p["tp"]:
            print(f"{f}: stored tp {p['tp']}, replayed {depth} ({src}): left as it is", file=sys.stderr)
            bad += 1
            continue
        p["tp_source"] = f"{src}; {TAG}"
        write_json(f, p)
        print(f"{f}: tp {depth} <- {src}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
