"""Record which estimator gave each stored plan's transition depth (plan.json `tp_source`, "given (--tp)" in plans
made before `--tp-from`). It replays run.sh's choice without a model: the study2 dense run's estimators through
`metrics.estimators.phase_depth` where that run exists, else the trajectory's dense mean-DM TP point. A replayed
depth that differs from the stored one is an error (the file is left as it is), so the source is never guessed.
Usage: python results/plan/backfill_tp_source.py   (from the project root)"""
import json
import sys
from pathlib import Path

from prunelens.analyze import transition_from_run
from prunelens.metrics.estimators import phase_depth
from prunelens.results import write_json

TRAJ = {("gemma-3-270m", "arc_easy_n64"): "results/prune_gemma3_270m/arc_easy",
        ("gemma-3-270m", "boolq_n100"): "results/prune_gemma3_270m/boolq",
        ("gemma-3-270m", "piqa_n64"): "results/study/trajectories/piqa"}


def main() -> int:
    bad = 0
    for f in sorted(Path("results/plan").glob("*/*/plan.json")):
        p = json.loads(f.read_text())
        if p.get("tp_source") != "given (--tp)":
            continue
        model, point = f.parent.parent.name, f.parent.name
        task = point.rsplit("_n", 1)[0]
        dense = Path(f"results/study2/{model}/dense/{task}")
        if (model, point) not in TRAJ and (dense / "analysis.json").is_file():
            pd_ = phase_depth(transition_from_run(dense).get("estimators"))
            depth, src = (None, None) if pd_ is None else (pd_["depth"], f"{pd_['source']} of {dense}")
        else:
            t = json.loads((Path(TRAJ[(model, point)]) / "iterative_skip" / "trajectory.json").read_text())
            depth = (t.get("dense") or {}).get("transition_point")
            src = f"mean_dm_tp point of the trajectory's dense model, verdict not checked ({TRAJ[(model, point)]})"
        if depth != p["tp"]:
            print(f"{f}: stored tp {p['tp']}, replayed {depth}: left as it is", file=sys.stderr)
            bad += 1
            continue
        p["tp_source"] = f"{src}; given as --tp (backfilled by results/plan/backfill_tp_source.py)"
        write_json(f, p)
        print(f"{f}: tp {depth} <- {src}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
