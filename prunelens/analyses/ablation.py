"""Transition ablation (the paper's Table 1): remove single layers and adjacent pairs around the Transition Point
and report accuracy (with CI) and final DM for every task, plus the average over tasks.

Layer ids are checkpoint ids 0..L-1. Layer l maps h_l -> h_{l+1}, so layer TP-1 is the one whose output is the first
Decisive state; the default window TP-2..TP+1 (method.md) therefore spans two Silent-phase layers and two Decisive.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from ..analyze import measure
from ..engine.autobatch import is_auto
from ..engine.prefix import DensePrefix
from ..journal import NoJournal
from ..metrics import bootstrap_mean_ci, decision_margin, predictions
from ..metrics.estimators import phase_depth
from ..model.surgery import keep_from_remove, pruned_view


def ablation_configs(tp: int, num_layers: int, window=(-2, 1), pairs: bool = True) -> list[list[int]]:
    """[[]] (dense) + singles {tp+window[0] .. tp+window[1]} ∩ 0..L-1 + adjacent pairs among them."""
    ids = [l for l in range(tp + window[0], tp + window[1] + 1) if 0 <= l < num_layers]
    out = [[]] + [[l] for l in ids]
    if pairs:
        out += [[l, l + 1] for l in ids if l + 1 in ids]
    return out


def reference_tp(tps: list) -> int:
    """One depth for all tasks (Table 1 uses one set of layers per model): the median of the tasks' depths."""
    got = [t for t in tps if t is not None]
    if not got:
        raise ValueError("no task has a Transition Point (all Silent throughout); pass tp= explicitly")
    return int(round(float(np.median(got))))


def _task_depth(d: dict) -> tuple[int | None, str]:
    """(depth, where it came from) of one task's dense run: phase_depth of its estimators (none when they have no
    depth, as in plan and restore); a run stored before the estimators existed gives its raw TP."""
    if not d.get("estimators"):
        return d.get("transition_point"), f"TP {d.get('transition_point')} (no estimators stored)"
    p = phase_depth(d["estimators"])
    return (p["depth"], f"{p['depth']}, {p['source']}") if p else (None, "none")


def _from_measure(m) -> dict:
    return {**m.summary, "depths": m.depths}


def _row(m) -> dict:
    s = m.summary
    return {"acc": s["acc"], "acc_ci": s["acc_ci"], "dm_final": s["dm_final"], "dm_final_ci": s["dm_final_ci"]}


def _correct_and_dm(s, gold, n_options, margin: str) -> np.ndarray:
    """[N, 2] (correct, DM) from one depth's option scores s [N, 1, Kmax]."""
    dm = decision_margin(s, gold, n_options, margin)[:, 0]
    return np.stack([(predictions(s, n_options)[:, 0] == gold).astype(float), dm], 1)


def final_outcome(sc, score_kind: str, margin: str) -> np.ndarray:
    """[N, 2] (correct, DM) at the last scored depth of engine Scores, in sample order."""
    return _correct_and_dm((sc.norm if score_kind == "norm" else sc.scores)[:, -1:], sc.gold, sc.n_options, margin)


def per_sample(m, score_kind: str, margin: str) -> np.ndarray:
    """[N, 2] (correct, DM) at the measurement's last depth, in sample order."""
    return final_outcome(m.scores, score_kind, margin)


def per_sample_from_csv(path, ids, depth: int, score_kind: str, margin: str) -> np.ndarray:
    """The same [N, 2] from an `analyze` run's samples.csv (which stores every option's score), in `ids` order.
    Raises ValueError when the file holds other samples than `ids`."""
    import pandas as pd
    df = pd.read_csv(path, dtype={"sample_id": str})
    if sorted(df["sample_id"].unique()) != sorted(ids):
        raise ValueError(f"{path} holds other sample ids than this ablation (other --sample/--seed?)")
    df = df[df["depth"] == depth].set_index("sample_id").loc[list(ids)]
    K = int(df["n_options"].max())
    s = df[[f"{'norm' if score_kind == 'norm' else 'score'}_{k}" for k in range(K)]].to_numpy()[:, None, :]
    return _correct_and_dm(s, df["gold"].to_numpy(), df["n_options"].to_numpy(), margin)


def paired(base: np.ndarray, new: np.ndarray, n_boot: int, seed: int) -> dict:
    """Change against dense on the same samples, with a paired bootstrap CI: far tighter than comparing two
    unpaired accuracy CIs, so a one-layer effect is visible at the n a CPU can afford."""
    lo, hi = bootstrap_mean_ci(new - base, n_boot, seed=seed)
    d = (new - base).mean(0)
    return {"d_acc": float(d[0]), "d_acc_ci": [float(lo[0]), float(hi[0])],
            "d_dm": float(d[1]), "d_dm_ci": [float(lo[1]), float(hi[1])]}


def transition_ablation(lm, tasks: dict, fmt: str = "cloze", *, tp: int | None = None, window=(-2, 1),
                        pairs: bool = True, score_kind: str = "raw", margin: str = "logit", n_boot: int = 1000,
                        seed: int = 0, batch_size: int = 16, progress: bool = True, dense: dict | None = None,
                        dense_samples: dict | None = None, journal=None, dense_prefix: bool = True) -> dict:
    """tasks: {name: [MCSample]}. Dense runs are full-depth (per-task TP); ablated runs score the final depth only.
    dense: optional {name: analysis.json dict} of the same samples, to reuse a finished `analyze` run, with
    dense_samples {name: [N, 2] per-sample (correct, DM) at its final depth} (per_sample_from_csv).
    Every ablated cell also carries its paired change against dense (d_acc, d_dm with CIs).
    progress: one bar over the configs x tasks cells (the dense row's cells are the dense passes). journal
    (journal.py): ablated cells a killed run finished are read from it (dense passes, if any, rerun).
    dense_prefix: cloze cells start from the dense residual at their first removed layer (engine/prefix.py), stored
    by the final-depth dense pass; a reused or full-depth dense run costs one more final-depth pass per task to
    store it, which the cells repay (each skips ~tp/L of the trunk)."""
    journal = journal or NoJournal()
    t0 = time.time()
    L = lm.anatomy.num_layers
    kw = dict(score_kind=score_kind, margin=margin, n_boot=n_boot, seed=seed, batch_size=batch_size, progress=False)
    bar = tqdm(total=len(tasks), desc="ablate", disable=not progress)
    dense, dense_samples = (dict(dense), dict(dense_samples or {})) if dense is not None else ({}, {})
    counted = tp is None and not dense            # the dense row's cells are counted by the full-depth passes
    if counted:
        # the configs depend on the tasks' TPs: full-depth dense passes first (the bar grows once they are known)
        for name, s in tasks.items():
            m = measure(lm, s, fmt, **kw)
            dense[name], dense_samples[name] = _from_measure(m), per_sample(m, score_kind, margin)
            bar.update()
    src = "given"
    if tp is None:          # each task's phase depth (the TP where identified, else its decision depth), then the median
        depth = {n: _task_depth(d) for n, d in dense.items()}
        ref = reference_tp([x for x, _ in depth.values()])
        src = "median of the tasks' depths (" + ", ".join(f"{n}: {why}" for n, (_, why) in depth.items()) + ")"
    else:
        ref = tp
    configs = ablation_configs(ref, L, window, pairs)
    bar.total = len(configs) * len(tasks)
    bar.refresh()
    use_prefix = dense_prefix and fmt == "cloze" and not is_auto(batch_size)
    cells = {}
    for name, samples in tasks.items():      # task by task: one task's stored prefix in memory at a time
        todo = [r for r in configs if r and (sorted(r), name) not in journal]
        pre = DensePrefix(fmt, depths={DensePrefix.start(r, L) for r in todo}) if use_prefix and todo else None
        if name not in dense:
            # a given TP: only the final depth is needed (the full-depth lens costs ~L times more on a CPU)
            m = measure(lm, samples, fmt, depths=[L], **kw, resume=pre.saver(L) if pre else None)
            dense[name], dense_samples[name] = _from_measure(m), per_sample(m, score_kind, margin)
        elif pre is not None:                # a reused dense run: one final-depth pass stores the prefix
            measure(lm, samples, fmt, depths=[L], **kw, resume=pre.saver(L))
        if not counted:
            bar.update()                     # the dense row's cell
        cells[(), name] = {k: dense[name][k] for k in ("acc", "acc_ci", "dm_final", "dm_final_ci")}
        for remove in configs[1:]:
            def cell(remove=remove, name=name, samples=samples):
                keep = keep_from_remove(remove, L)
                with pruned_view(lm, keep):
                    m = measure(lm, samples, fmt, depths=[len(keep)], **kw,
                                resume=pre.resume(remove, L) if pre is not None else None)
                r = _row(m)
                if dense_samples.get(name) is not None:
                    r.update(paired(dense_samples[name], per_sample(m, score_kind, margin), n_boot, seed))
                return r
            cells[tuple(remove), name] = journal((sorted(remove), name), cell)
            bar.update()
    rows = []
    for remove in configs:
        res = {name: cells[tuple(remove), name] for name in tasks}
        rows.append({"removed": remove, "label": "dense" if not remove else "-" + ",".join(map(str, remove)),
                     "relative_to_tp": [l - ref for l in remove], "tasks": res,
                     "avg_acc": float(np.mean([r["acc"] for r in res.values()])),
                     "avg_dm": float(np.mean([r["dm_final"] for r in res.values()]))})
    bar.close()
    task_tp = {name: dense[name].get("transition_point") for name in tasks}
    return {"tp": ref, "tp_source": src, "task_tp": task_tp,
            "num_layers": L, "window": list(window), "score_kind": score_kind, "margin": margin,
            "tasks": list(tasks), "rows": rows,
            "dense_dm_by_depth": {n: [r["dm_mean"] for r in d["depths"]] for n, d in dense.items()
                                  if len(d["depths"]) == L + 1},
            "seconds": round(time.time() - t0, 1)}
