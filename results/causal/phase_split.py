"""Add the paired Silent-vs-Decisive comparison (`restore.phase_split`, 2026-12-02) to finished restore runs, and
recompute their answers. Four final-depth passes per case: dense and pruned (checked against the stored numbers, so
the questions are the same), then the model without only the removed Silent layers and without only the Decisive
ones. Everything else in restore.json is kept; `phase_split_note` says what was recomputed.
Usage (from the project root, venv active): python results/causal/phase_split.py DATA_DIR RESTORE_DIR...
"""
import sys
from pathlib import Path

import numpy as np

from prunelens.analyses.run import _lm, _task
from prunelens.causal.restore import _outcome, answers, phase_split
from prunelens.engine.score import score
from prunelens.model.surgery import keep_from_remove, pruned_view
from prunelens.results import read_json, write_json


def refresh(data_dir: str, d: Path) -> dict:
    r = read_json(d / "restore.json")
    lm = _lm(r["model"], None)
    t = _task(r["task"], split=r["split"], data_dir=data_dir, sample=r["n_samples"], seed=r["seed"])
    fmt, sk, mg, L = r["format"], r["score_kind"], r["margin"], r["num_layers"]
    kw = dict(batch_size=16, progress=False)
    dense = _outcome(score(lm, t.samples, fmt, depths=[L], **kw), sk, mg)
    with pruned_view(lm, keep_from_remove(r["removed"], L)):
        pruned = _outcome(score(lm, t.samples, fmt, depths=[r["pruned_layers"]], **kw), sk, mg)
    for name, got in (("dense", dense), ("pruned", pruned)):      # the same questions and numbers as the run
        assert abs(got[:, 0].mean() - r[name]["acc"]) < 1e-9 and abs(got[:, 1].mean() - r[name]["dm"]) < 1e-4, name
    idx = np.random.default_rng(r["seed"]).integers(0, len(t.samples), size=(r["n_boot"], len(t.samples)))
    r["phase_split"] = phase_split(lm, t.samples, fmt, r["removed"], r["tp"], dense=dense, pruned=pruned, idx=idx,
                                   score_kind=sk, margin=mg, batch_size=16)
    r["answers"] = answers(r)
    r["phase_split_note"] = ("phase split recomputed on 2026-12-02 by results/causal/phase_split.py (same questions, "
                             "resamples and passes; adds silent_vs_decisive and the answer keyed 'phase')")
    write_json(d / "restore.json", r)
    return r


if __name__ == "__main__":
    for d in sys.argv[2:]:
        r = refresh(sys.argv[1], Path(d))
        for a in r["answers"]:
            print(f"{d}: {a['status']}: {a['question']} | {a['evidence']}")
