"""The decision lens on one (model, task): per-depth DM, accuracy, OF/KL and the Transition Point.

`measure` is the reusable core (pruning re-measures with it at every step); `analyze` adds loading and output.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .engine.score import Scores, score
from .metrics.chance import chance_levels, judge
from .metrics import (decision_margin, depth_summary, phases, predictions, transition_estimators, transition_point,
                      transition_point_bootstrap)
from .results import now, versions, write_json


@dataclass
class Measurement:
    scores: Scores
    depths: list[dict]          # metrics.depth_summary rows (+ acc_norm for cloze)
    summary: dict               # transition point, phases, final-depth numbers


CHUNK = 100      # questions per journaled part of a resumable run


def score_in_parts(lm, samples, fmt: str, journal, chunk: int | None = None, **kw) -> Scores:
    """`score` over consecutive parts of `chunk` questions, each part's arrays read from or recorded in `journal`
    (journal.py), so a killed run continues at the first unfinished part. Parts batch among themselves: the numbers
    can differ from one whole-set pass in the last digits (padding), never between a resumed and an uninterrupted
    run."""
    parts, chunk = [], chunk or CHUNK
    for c0 in range(0, len(samples), chunk):
        def run(part=samples[c0:c0 + chunk]):
            sc = score(lm, part, fmt, **kw)
            return {"depths": sc.depths, "scores": sc.scores, "norm": sc.norm, "final_loglik": sc.final_loglik,
                    "final_greedy": sc.final_greedy, "n_tokens": sc.n_tokens, "info": sc.info}
        parts.append(journal(("part", c0, chunk), run))
    K = max(s.n_options for s in samples)

    def cat(name, fill, dtype=float):
        if parts[0][name] is None:
            return None
        arrs = [np.asarray(p[name], dtype=dtype) for p in parts]
        # a part whose questions have fewer options has a narrower last axis: pad it as `score` pads (NaN / 0)
        return np.concatenate([np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, K - a.shape[-1])], constant_values=fill)
                               for a in arrs])
    return Scores(fmt, parts[0]["depths"], cat("scores", np.nan), cat("norm", np.nan),
                  np.array([s.gold for s in samples]), np.array([s.n_options for s in samples]),
                  [s.id for s in samples], final_loglik=cat("final_loglik", np.nan),
                  final_greedy=cat("final_greedy", False, bool), n_tokens=cat("n_tokens", 0, np.int64),
                  info=parts[0]["info"])


def measure(lm, samples, fmt: str = "cloze", *, score_kind: str = "raw", margin: str = "logit", tau: float = 0.0,
            n_boot: int = 1000, seed: int = 0, batch_size: int = 16, depths=None, progress: bool = True,
            add_bos: bool | None = None, resume=None, journal=None) -> Measurement:
    """Score every sample at every depth and summarise. score_kind: cloze `raw` (sum log-prob, lm-eval acc) or
    `norm` (per-character, lm-eval acc_norm) drives DM/OF; both accuracies are always reported. resume: cloze
    only, engine.score.Resume (a pruned model's pass from the stored dense prefix, engine/prefix.py). journal
    (journal.py): score in resumable parts (`score_in_parts`; a fixed batch size only)."""
    from .engine.autobatch import is_auto
    if score_kind not in ("raw", "norm"):
        raise ValueError(f"score_kind must be raw or norm, got {score_kind!r}")
    if fmt == "letter" and score_kind == "norm":
        raise ValueError("score_kind='norm' applies to the cloze format only")
    kw = dict(depths=depths, batch_size=batch_size, progress=progress, add_bos=add_bos,
              **({"resume": resume} if resume is not None else {}))
    if journal is not None and resume is None and not is_auto(batch_size):
        sc = score_in_parts(lm, samples, fmt, journal, **kw)
    else:
        sc = score(lm, samples, fmt, **kw)
    s = sc.norm if score_kind == "norm" else sc.scores
    rows = depth_summary(s, sc.gold, sc.n_options, margin=margin, n_boot=n_boot, seed=seed)
    if sc.norm is not None:
        for kind, arr in (("acc_raw", sc.scores), ("acc_norm", sc.norm)):
            correct = predictions(arr, sc.n_options) == sc.gold[:, None]
            for r, c in zip(rows, correct.mean(0)):
                r[kind] = float(c)
    for r, d in zip(rows, sc.depths):
        r["depth"] = d
    dm = np.array([r["dm_mean"] for r in rows])
    full = sc.depths == list(range(len(sc.depths)))
    tp = transition_point(dm, tau) if full else None
    ph = phases(tp, len(rows)) if full else {}
    if full:
        ph.update(transition_point_bootstrap(decision_margin(s, sc.gold, sc.n_options, margin), tau, n_boot, seed=seed))
        # the TP beside the per-question decision depths and the accuracy change-point, with verdicts from their CIs
        if len(rows) >= 3:
            ph["estimators"] = transition_estimators(s, sc.gold, sc.n_options, margin=margin, tau=tau, n_boot=n_boot,
                                                     seed=seed)
    final = rows[-1]
    # A task with unbalanced answers (BoolQ) can be "above chance" by answering one option to everything: the
    # constant answer's accuracy is the second chance level (metrics/chance.py).
    lv = chance_levels(sc.gold, sc.n_options)
    summary = {**ph, "tau": tau, "acc": final["acc"], "acc_ci": final["acc_ci"], "dm_final": final["dm_mean"],
               "dm_final_ci": final["dm_ci"], "chance_levels": lv,
               "above_chance": judge(final["acc"], len(sc.gold), lv)[0]}
    if sc.norm is not None:
        summary["acc_raw"], summary["acc_norm"] = final["acc_raw"], final["acc_norm"]
    return Measurement(sc, rows, summary)


def sample_table(m: Measurement, score_kind: str = "raw", margin: str = "logit") -> pd.DataFrame:
    """Long table: one row per (sample, depth) with gold, prediction, DM and every option's score."""
    sc = m.scores
    s = sc.norm if score_kind == "norm" else sc.scores
    dm = decision_margin(s, sc.gold, sc.n_options, margin)
    pred = predictions(s, sc.n_options)
    N, D, K = s.shape
    df = pd.DataFrame({"sample_id": np.repeat(sc.ids, D), "depth": np.tile(sc.depths, N),
                       "gold": np.repeat(sc.gold, D), "n_options": np.repeat(sc.n_options, D),
                       "pred": pred.reshape(-1), "dm": dm.reshape(-1)})
    df["correct"] = df["pred"] == df["gold"]
    for k in range(K):
        df[f"score_{k}"] = sc.scores[:, :, k].reshape(-1)
    if sc.norm is not None:
        for k in range(K):
            df[f"norm_{k}"] = sc.norm[:, :, k].reshape(-1)
    return df


def analyze(model: str, task: str, fmt: str = "cloze", out: str | Path = "out", *, split: str | None = None,
            data_dir: str | None = None, limit: int | None = None, sample: int | None = None, seed: int = 0,
            device: str = "auto", dtype: str = "auto", score_kind: str = "raw", margin: str = "logit",
            tau: float = 0.0, batch_size: int = 16, n_boot: int = 1000, plots: bool = True, progress: bool = True,
            trust_remote_code: bool = False, add_bos: bool | None = None, lm=None, task_obj=None,
            device_map=None, offload_folder=None, journal=None) -> dict:
    """Run the decision lens and write analysis.json, samples.csv and plots into `out`. Returns the JSON dict.
    journal: score in resumable parts (`measure`)."""
    from .model import load_model
    from .tasks import load_task

    t0 = time.time()
    out = Path(out)
    # Task first: malformed data fails before minutes of model loading.
    task_obj = task_obj or load_task(task, split=split, data_dir=data_dir, limit=limit, sample=sample, seed=seed)
    if not task_obj.samples:
        raise ValueError(f"task {task!r} split {task_obj.split!r} has no samples")
    lm = lm or load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                          device_map=device_map, offload_folder=offload_folder)
    t_load = time.time()
    m = measure(lm, task_obj.samples, fmt, score_kind=score_kind, margin=margin, tau=tau, n_boot=n_boot, seed=seed,
                batch_size=batch_size, progress=progress, add_bos=add_bos, journal=journal)
    t_score = time.time()
    result = {
        "schema": "prunelens.analysis/1",
        "model": model, "model_path": lm.path, "model_class": lm.anatomy.model_class,
        "task": task_obj.name, "format": fmt, "split": task_obj.split, "source": task_obj.source,
        **({"task_variant": task_obj.variant} if getattr(task_obj, "variant", "") else {}),
        "n_samples": len(task_obj.samples), "num_layers": lm.anatomy.num_layers,
        "score": score_kind, "margin": margin,
        **m.summary,
        "depths": m.depths,
        "config": {"limit": limit, "sample": sample, "seed": seed, "device": str(lm.device), "dtype": dtype,
                   "device_map": device_map if isinstance(device_map, (str, type(None))) else "custom",
                   "batch_size": m.scores.info.get("batch_size", batch_size), "n_boot": n_boot,
                   "add_bos": m.scores.info.get("add_bos"),
                   **({"batch_size_auto": m.scores.info["batch_size_auto"]} if "batch_size_auto" in m.scores.info
                      else {})},
        "versions": versions(), "date": now(),
        "timing": {"load_s": round(t_load - t0, 2), "score_s": round(t_score - t_load, 2)},
    }
    out.mkdir(parents=True, exist_ok=True)
    sample_table(m, score_kind, margin).to_csv(out / "samples.csv", index=False)
    if plots:
        from .plots import plot_analysis
        result["plots"] = [p.name for p in plot_analysis(result, out)]
    write_json(out / "analysis.json", result)
    return result


def transition_from_run(run_dir: str | Path, *, tau: float | None = None, n_boot: int = 1000, seed: int = 0,
                        write: bool = False) -> dict:
    """Recompute the Transition Point and its bootstrap CI from a saved analyze run (analysis.json + samples.csv),
    without the model, and beside it the other transition estimators (`estimators`: decision depths, accuracy
    change-point, each with CI and verdict) from the per-option scores of the run's score kind. `tau` defaults to
    the run's own; `write` adds the CI and the estimators to analysis.json, and only at that tau, so the file never
    holds a TP and a CI of different definitions."""
    from .results import read_json
    run = Path(run_dir)
    res = read_json(run / "analysis.json")
    csv = run / "samples.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: the per-sample table of this analyze run is missing")
    tau = res.get("tau", 0.0) if tau is None else tau
    if write and tau != res.get("tau", 0.0):
        raise ValueError(f"--write at tau={tau} would contradict {run / 'analysis.json'} (tau={res.get('tau')}); "
                         "rerun analyze with --tau instead")
    df = pd.read_csv(csv, usecols=["sample_id", "depth", "dm"])
    # pivot sorts the ids ("10" < "2"); the file's order is measure's, and the resamples index rows in that order.
    dm = df.pivot(index="sample_id", columns="depth", values="dm").loc[df["sample_id"].unique()]   # [N, D]
    if list(dm.columns) != list(range(len(dm.columns))) or dm.isna().any().any():
        raise ValueError(f"{csv}: needs every depth 0..L for every sample to place a Transition Point")
    if len(dm) != res.get("n_samples", len(dm)):
        raise ValueError(f"{csv} has {len(dm)} samples, analysis.json says {res.get('n_samples')}")
    d = dm.to_numpy()
    out = {"transition_point": transition_point(d.mean(0), tau), "tau": tau,
           **transition_point_bootstrap(d, tau, n_boot, seed=seed)}
    got = _scores_from_csv(csv, res.get("score", "raw"), list(dm.index))
    if got is not None and got[0].shape[1] >= 3:
        out["estimators"] = transition_estimators(*got, margin=res.get("margin", "logit"), tau=tau, n_boot=n_boot,
                                                  seed=seed)
    if write:
        res.update({k: out[k] for k in ("tp_ci", "tp_none_frac", "tp_boot_counts", "estimators") if k in out})
        write_json(run / "analysis.json", res)
    return out


def _scores_from_csv(csv, score_kind: str, ids: list) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(scores [N, D, K], gold [N], n_options [N]) from an analyze run's samples.csv, rows in `ids` order: the option
    scores the run measured with (`score_k`, or `norm_k` for --score norm), padding NaN as written. None when the
    table has no such columns (then only the mean-DM TP can be recomputed)."""
    prefix = "norm" if score_kind == "norm" else "score"
    df = pd.read_csv(csv)
    cols = sorted((c for c in df.columns if c.startswith(prefix + "_") and c[len(prefix) + 1:].isdigit()),
                  key=lambda c: int(c[len(prefix) + 1:]))
    if not cols or not {"gold", "n_options"} <= set(df.columns):
        return None
    row = pd.Index(ids).get_indexer(df["sample_id"])
    depth = df["depth"].to_numpy()
    scores = np.full((len(ids), int(depth.max()) + 1, len(cols)), np.nan)
    scores[row, depth] = df[cols].to_numpy(dtype=np.float64)
    first = df.drop_duplicates("sample_id").set_index("sample_id").loc[ids]
    return scores, first["gold"].to_numpy(), first["n_options"].to_numpy()


def chance_of_run(run_dir: str | Path) -> tuple[bool | None, str]:
    """(above chance?, why) for a saved analyze run, by metrics.chance.judge on its final accuracy and the chance
    levels of its questions (from samples.csv, so runs made before analyze recorded them are judged the same way).
    The study scripts gate pruning and readouts on it; the report leaves runs at chance out of its claims."""
    from .results import read_json
    run = Path(run_dir)
    res = read_json(run / "analysis.json")
    df = pd.read_csv(run / "samples.csv", usecols=["sample_id", "depth", "gold", "n_options"])
    first = df[df["depth"] == df["depth"].min()]
    return judge(res["acc"], len(first), chance_levels(first["gold"].to_numpy(), first["n_options"].to_numpy()))
