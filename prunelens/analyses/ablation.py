"""Transition ablation (the paper's Table 1): remove single layers and adjacent pairs around the Transition Point
and report accuracy (with CI) and final DM for every task, plus the average over tasks.

Layer ids are checkpoint ids 0..L-1. Layer l maps h_l -> h_{l+1}, so layer TP-1 is the one whose output is the first
Decisive state; the default window TP-2..TP+1 (method.md) therefore spans two Silent-phase layers and two Decisive.
"""
from __future__ import annotations

import time

import numpy as np

from ..analyze import measure
from ..model.surgery import keep_from_remove, pruned_view


def ablation_configs(tp: int, num_layers: int, window=(-2, 1), pairs: bool = True) -> list[list[int]]:
    """[[]] (dense) + singles {tp+window[0] .. tp+window[1]} ∩ 0..L-1 + adjacent pairs among them."""
    ids = [l for l in range(tp + window[0], tp + window[1] + 1) if 0 <= l < num_layers]
    out = [[]] + [[l] for l in ids]
    if pairs:
        out += [[l, l + 1] for l in ids if l + 1 in ids]
    return out


def reference_tp(tps: list) -> int:
    """One TP for all tasks (Table 1 uses one set of layers per model): the median of the tasks' TPs."""
    got = [t for t in tps if t is not None]
    if not got:
        raise ValueError("no task has a Transition Point (all Silent throughout); pass tp= explicitly")
    return int(round(float(np.median(got))))


def _from_measure(m) -> dict:
    return {**m.summary, "depths": m.depths}


def _row(m) -> dict:
    s = m.summary
    return {"acc": s["acc"], "acc_ci": s["acc_ci"], "dm_final": s["dm_final"], "dm_final_ci": s["dm_final_ci"]}


def transition_ablation(lm, tasks: dict, fmt: str = "cloze", *, tp: int | None = None, window=(-2, 1),
                        pairs: bool = True, score_kind: str = "raw", margin: str = "logit", n_boot: int = 1000, seed: int = 0,
                        batch_size: int = 16, progress: bool = False, dense: dict | None = None) -> dict:
    """tasks: {name: [MCSample]}. Dense runs are full-depth (per-task TP); ablated runs score the final depth only.
    dense: optional {name: analysis.json dict} of the same samples, to reuse a finished `analyze` run."""
    t0 = time.time()
    L = lm.anatomy.num_layers
    kw = dict(score_kind=score_kind, margin=margin, n_boot=n_boot, seed=seed, batch_size=batch_size, progress=progress)
    if dense is None:
        # With a given TP only the final depth is needed: the full-depth lens costs ~L times more on a CPU.
        dd = {} if tp is None else {"depths": [L]}
        dense = {name: _from_measure(measure(lm, s, fmt, **dd, **kw)) for name, s in tasks.items()}
    task_tp = {name: d.get("transition_point") for name, d in dense.items()}
    ref = tp if tp is not None else reference_tp(list(task_tp.values()))
    rows = []
    for remove in ablation_configs(ref, L, window, pairs):
        keep = keep_from_remove(remove, L)
        res = {}
        for name, samples in tasks.items():
            if not remove:
                res[name] = {k: dense[name][k] for k in ("acc", "acc_ci", "dm_final", "dm_final_ci")}
                continue
            with pruned_view(lm, keep):
                res[name] = _row(measure(lm, samples, fmt, depths=[len(keep)], **kw))
        rows.append({"removed": remove, "label": "dense" if not remove else "-" + ",".join(map(str, remove)),
                     "relative_to_tp": [l - ref for l in remove], "tasks": res,
                     "avg_acc": float(np.mean([r["acc"] for r in res.values()])),
                     "avg_dm": float(np.mean([r["dm_final"] for r in res.values()]))})
    return {"tp": ref, "tp_source": "given" if tp is not None else "median of task TPs", "task_tp": task_tp,
            "num_layers": L, "window": list(window), "score_kind": score_kind, "margin": margin, "tasks": list(tasks), "rows": rows,
            "dense_dm_by_depth": {n: [r["dm_mean"] for r in d["depths"]] for n, d in dense.items()
                                  if len(d["depths"]) == L + 1},
            "seconds": round(time.time() - t0, 1)}
