"""The study2 README's dense table from the analysis.json files (so its numbers are the JSON's): acc_norm with its
CI ("at chance" by analyze.chance_of_run, the rule of results/gate.py), each transition estimator as point [95% CI] (bold "identified" where its CI says so), and the wall time from
timings.csv. Usage: python results/study2/dense_table.py [results/study2]"""
import csv
import json
import sys
from pathlib import Path

ESTIMATORS = ("mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint")


def _v(x) -> str:
    return "none" if x is None else str(x)


def cell(e: dict) -> str:
    s = f"{_v(e['point'])} [{_v(e['ci'][0])}, {_v(e['ci'][1])}]"
    return s + (" **identified**" if e["verdict"] == "identified" else "")


def row(a: dict, run: Path, wall: dict) -> str:
    from prunelens.analyze import chance_of_run      # both chance levels, also for runs older than the field
    model = Path(str(a["model"])).name
    at = "" if chance_of_run(run)[0] else " **at chance**"
    lo, hi = a["acc_ci"]
    w = wall.get(f"dense_{model}_{a['task']}")
    return (f"| {model} | {a['task']} | {a['n_samples']} | {a['acc']:.3f} [{lo:.3f}, {hi:.3f}]{at} | "
            + " | ".join(cell(a["estimators"][k]) for k in ESTIMATORS) + f" | {w + ' s' if w else ''} |")


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/study2")
    wall = {}
    if (t := root / "timings.csv").is_file():
        wall = {r["part"]: r["seconds"] for r in csv.DictReader(t.open())}
    print("| model | task | n | acc_norm [95% CI] | mean-DM TP | decision depth (pred) | decision depth (gold) | "
          "acc change-point | wall |")
    print("| --- | --- | ---: | --- | --- | --- | --- | --- | ---: |")
    for p in sorted(root.glob("*/dense/*/analysis.json")):
        print(row(json.loads(p.read_text()), p.parent, wall))
