"""`prunelens controls` with and without the stored dense prefix (each pass starts at its first removed layer), in one
process, interleaved rounds (this VM drifts between minutes: only ratios within a round mean anything):

    python bench/bench_controls.py --model smollm2-135m --data-dir ../shared/data \
        --trajectory results/study2/smollm2-135m/prune/arc_easy/iterative_skip/trajectory.json [--n 50] [--rounds 2] \
        [--counts 3,9,15]

The removal sets are those of the study (one-shot ShortGPT, angular block, tail, random x3 at every layer count of
the IP trajectory). Prints each round's wall time of both paths, their ratio, the share of trunk layers the prefix
skips, and the largest difference of any accuracy / DM between the two paths.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from prunelens.analyses import trajectories as T
from prunelens.analyses.controls import run_controls
from prunelens.engine.prefix import DensePrefix
from prunelens.model import load_model
from prunelens.tasks import load_task


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--trajectory", required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--score", default="norm")
    ap.add_argument("--counts", default=None, help="layer counts, e.g. 3,9,15 (default: every count of the trajectory)")
    a = ap.parse_args()
    lm = load_model(a.model, device="cpu", dtype="float32")
    S = load_task(a.task, data_dir=a.data_dir, sample=a.n, seed=0).samples
    traj = T.load_trajectory(a.trajectory)
    counts = [int(c) for c in a.counts.split(",")] if a.counts else None
    kw = dict(ip_trajectory=traj, counts=counts, seeds=(0, 1, 2), score_kind=a.score, progress=False, n_boot=200)
    for r in range(a.rounds):
        res, sec = {}, {}
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            t = time.perf_counter()
            res[on] = run_controls(lm, S, dense_prefix=on, **kw)
            sec[on] = time.perf_counter() - t
        L = lm.anatomy.num_layers
        sets = [s["removed"] for m, v in res[False]["methods"].items() if m not in ("ip", "random") for s in v["steps"]]
        sets += [x["removed"] for s in res[False]["methods"]["random"]["steps"] for x in s["runs"]]
        skipped = sum(max(0, DensePrefix.start(s, L)) for s in sets) / sum(L - len(s) for s in sets)
        diff_acc = diff_dm = 0.0
        for m, v in res[False]["methods"].items():
            if m == "ip":
                continue
            for x, y in zip(v["steps"], res[True]["methods"][m]["steps"]):
                diff_acc = max(diff_acc, abs(x["acc"] - y["acc"]))
                diff_dm = max(diff_dm, abs(x["dm_final"] - y["dm_final"]))
        print(f"round {r}: whole passes {sec[False]:.1f} s, from the dense prefix {sec[True]:.1f} s, "
              f"ratio {sec[False] / sec[True]:.2f}x; {len(sets)} removal passes, trunk layers skipped "
              f"{skipped:.0%}; max |d acc| {diff_acc:.2g}, max |d DM| {diff_dm:.2g}", flush=True)


if __name__ == "__main__":
    main()
