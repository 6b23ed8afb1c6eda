"""Orchestration: load model and task(s), run one analysis, write `<out>/<name>.json` and its figures.

Each `run_*` takes an already loaded `lm` (tests, the study script) or a model spec, and returns the JSON dict.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from ..journal import for_run
from ..results import now, staged, versions, write_json
from . import figures as F
from . import trajectories as T


def _lm(model, lm, device="auto", dtype="auto"):
    if lm is not None:
        return lm
    from ..model import load_model
    return load_model(model, device=device, dtype=dtype)


def _task(task, split=None, data_dir=None, limit=None, sample=None, seed=0, letters=None, permute=None):
    from ..tasks import load_task
    return load_task(task, split=split, data_dir=data_dir, limit=limit, sample=sample, seed=seed, letters=letters,
                     permute=permute)


def _journal(out, name, lm, samples, **options):
    """The run's resume journal (journal.py), saying so when it continues a killed run."""
    j = for_run(out, name, lm, samples, **options)
    if j.resumed:
        print(f"[prunelens] {name}: resuming, {j.resumed} pass(es) already done in {j.path}", flush=True)
    return j


def _fits(lm, fmt, *tasks) -> None:
    """Every prompt fits the model's positions: checked before any compute (one error naming the sample)."""
    from ..tasks.limits import check_lengths
    for t in tasks:
        check_lengths(lm, t.samples, fmt, what=t.name)


def _meta(lm, t, fmt, **extra) -> dict:
    return {"model": lm.name, "model_path": lm.path, "num_layers": lm.anatomy.num_layers, "format": fmt,
            **({"task": t.name, "split": t.split, "n_samples": len(t.samples)} if t is not None else {}),
            **({"task_variant": t.variant} if t is not None and getattr(t, "variant", "") else {}),
            **extra, "versions": versions(), "date": now()}


def _levels(samples) -> dict:
    """Chance levels of the questions a result's dense accuracy is measured on (metrics/chance.py): recorded so the
    report can leave out a case whose model decides nothing, as it does for runs and trajectories."""
    from ..metrics.chance import chance_levels
    return chance_levels([s.gold for s in samples], [s.n_options for s in samples])


def _finish(out, name, res, plots) -> dict:
    """Write the result and its figures into `out` as one run (staged: a failure leaves `out` as it was)."""
    with staged(out) as d:
        res["plots"] = [p.name for p in (f(res, d) for f in plots)]
        write_json(d / f"{name}.json", res)
    return res


def removal_from(remove=None, trajectory=None, ratio=None) -> list[int]:
    if remove is not None:
        try:
            return sorted(remove)
        except TypeError:
            raise ValueError(f"--remove: layer ids must be integers, got {remove!r}") from None
    if trajectory is None or ratio is None:
        raise ValueError("give --remove, or --trajectory with --ratio")
    return T.removed_at(T.load_trajectory(trajectory), ratio)


def run_cka(out, *, model="gemma-3-270m", task="arc_challenge", fmt="cloze", remove=None, trajectory=None,
            ratio=None, debiased=False, include_bos=False, accuracy=True, lm=None, task_kw=None, batch_size=8,
            score_kind="raw", margin="logit", progress=True):
    from ..model.surgery import keep_from_remove
    from .cka import cka_pruned_vs_dense
    t0 = time.time()
    lm, t = _lm(model, lm), _task(task, **(task_kw or {}))
    rem = removal_from(remove, trajectory, ratio)
    keep = keep_from_remove(rem, lm.anatomy.num_layers)
    _fits(lm, fmt, t)
    res = {**_meta(lm, t, fmt, removed=rem, debiased=debiased, include_bos=include_bos),
           **cka_pruned_vs_dense(lm, t.samples, fmt, keep, debiased=debiased, include_bos=include_bos,
                                 batch_size=batch_size, progress=progress,
                                 accuracy=dict(score_kind=score_kind, margin=margin) if accuracy else None)}
    res["seconds"] = round(time.time() - t0, 1)
    return _finish(out, "cka", res, [lambda r, o: F.cka_best_match(r, o / "cka_best_match.png"),
                                     lambda r, o: F.cka_heatmap(r, "hidden", o / "cka_hidden.png"),
                                     lambda r, o: F.cka_heatmap(r, "decision", o / "cka_decision.png")])


def run_noise(out, *, model="gemma-3-270m", task="arc_easy", fmt="cloze", alphas=(0.5, 1.0, 2.0), depths=None,
              seeds=(0, 1, 2), include_bos=False, lm=None, task_kw=None, batch_size=16, tp=None, score_kind="raw",
              margin="logit", progress=True):
    from .noise import noise_grid, phase_sensitivity
    lm, t = _lm(model, lm), _task(task, **(task_kw or {}))
    _fits(lm, fmt, t)
    j = _journal(out, "noise", lm, t.samples, fmt=fmt, score=score_kind, margin=margin, batch_size=batch_size,
                 include_bos=include_bos)
    res = {**_meta(lm, t, fmt), **noise_grid(lm, t.samples, fmt, alphas=alphas, depths=depths, seeds=seeds,
                                            include_bos=include_bos, batch_size=batch_size, tp=tp,
                                            score_kind=score_kind, margin=margin, progress=progress, journal=j)}
    res["phase_sensitivity"] = phase_sensitivity(res)
    res = _finish(out, "noise", res, [lambda r, o: F.noise_heatmaps(r, o / "noise_heatmap.png"),
                                      lambda r, o: F.noise_lines(r, o / "noise_lines.png")])
    j.close()
    return res


def _dense_from(root, ts, fmt, score_kind="raw", margin="logit") -> tuple[dict | None, dict | None]:
    """Reuse finished `analyze` runs ROOT/<task>/analysis.json when they measured exactly the same samples the
    same way (format, split, sample ids, score and margin): otherwise the dense row would compare other numbers."""
    if root is None:
        return None, None
    from ..results import read_json
    from .ablation import per_sample_from_csv
    out, per = {}, {}
    for n, t in ts.items():
        a = read_json(Path(root) / n / "analysis.json")
        got = (a["n_samples"], a["format"], a["split"], a.get("score", "raw"), a.get("margin", "logit"))
        want = (len(t.samples), fmt, t.split, score_kind, margin)
        if got != want:
            raise ValueError(f"{root}/{n}/analysis.json measured {got} (n, format, split, score, margin), "
                             f"this ablation {want}")
        out[n] = a
        per[n] = per_sample_from_csv(Path(root) / n / "samples.csv", [str(s.id) for s in t.samples],
                                     a["num_layers"], score_kind, margin)
    return out, per


def run_ablation(out, *, model="gemma-3-270m", tasks=("arc_easy",), fmt="cloze", tp=None, window=(-2, 1),
                 pairs=True, lm=None, task_kw=None, batch_size=16, dense_from=None, score_kind="raw",
                 margin="logit", progress=True):
    from .ablation import transition_ablation
    lm = _lm(model, lm)
    ts = {t.name: t for t in (_task(n, **(task_kw or {})) for n in tasks)}   # a .yaml/.jsonl spec -> its name
    if len(ts) != len(tasks):
        raise ValueError(f"two of the tasks {list(tasks)} have the same name")
    _fits(lm, fmt, *ts.values())
    dense, dense_samples = _dense_from(dense_from, ts, fmt, score_kind, margin)
    # cells are keyed by (removed layers, task name); the key covers every task's samples, in order
    # the reused dense outcomes enter every paired change: their digest is part of the key
    dig = hashlib.sha256(b"".join(np.ascontiguousarray(v, dtype=np.float64).tobytes()
                                  for _, v in sorted((dense_samples or {}).items()))).hexdigest()[:20]
    j = _journal(out, "ablation", lm, [s for t in ts.values() for s in t.samples], fmt=fmt, tasks=list(ts),
                 score=score_kind, margin=margin, batch_size=batch_size, dense_from=dig if dense is not None else None)
    res = {**_meta(lm, None, fmt, n_samples={n: len(t.samples) for n, t in ts.items()}),
           **transition_ablation(lm, {n: t.samples for n, t in ts.items()}, fmt, tp=tp, window=window, pairs=pairs,
                                 batch_size=batch_size, dense=dense, dense_samples=dense_samples,
                                 score_kind=score_kind, margin=margin, progress=progress, journal=j)}
    res = _finish(out, "ablation", res, [lambda r, o: F.ablation_bars(r, o / "ablation.png")])
    j.close()
    return res


def find_files(run_dirs, name: str) -> list[Path]:
    """Every `name` file under the given run dirs (a run dir may itself be the file)."""
    out = []
    for d in map(Path, run_dirs):
        out += [d] if d.is_file() and d.name == name else sorted(d.rglob(name)) if d.is_dir() else []
    return out


def run_correlation(out, run_dirs, *, gamma=0.5, method=None):
    """Critical ratio + Pearson r over every trajectory.json (and controls.json one-shot ShortGPT) found."""
    from .correlation import correlate, point_from_trajectory
    pts = []
    for p in find_files(run_dirs, "trajectory.json"):
        tr = T.load_trajectory(p)
        if method is None or T.method(tr) == method:
            pts.append(point_from_trajectory(tr, gamma, str(p)))
    res = {"gamma": gamma, "method": method, **correlate(pts), "versions": versions(), "date": now()}
    return _finish(out, "correlation", res, [lambda r, o: F.correlation_scatter(r, o / "correlation.png"),
                                             lambda r, o: F.correlation_by_estimator(r, o / "correlation_by_estimator.png")])


def run_recovery(out, *, model="gemma-3-270m", train_task="arc_easy", train_split="test", eval_task="arc_easy",
                 eval_split="validation", fmt="cloze", removals=None, trajectory=None, ratios=None, mode="lora",
                 steps=40, lr=2e-4, batch_size=8, lora_r=8, n_train=None, n_eval=None, seed=0, lm=None, log=print,
                 full_depth=True, score_kind="raw", margin="logit", data_dir=None, progress=True):
    from .controls import block_influence
    from .recovery import recover
    lm = _lm(model, lm)
    tr = _task(train_task, split=train_split, sample=n_train, seed=seed, data_dir=data_dir)
    ev = _task(eval_task, split=eval_split, sample=n_eval, seed=seed, data_dir=data_dir)
    _fits(lm, fmt, tr, ev)
    if removals is None:
        if trajectory is not None:
            removals = [T.removed_at(T.load_trajectory(trajectory), r) for r in ratios]
            source = f"trajectory {trajectory}"
        else:   # no trajectory given: one-shot ShortGPT order on the training prompts
            import numpy as np
            order = np.argsort(block_influence(lm, tr.samples[:64], fmt), kind="stable").tolist()
            removals = [order[:round(r * lm.anatomy.num_layers)] for r in ratios]
            source = "one-shot ShortGPT (BI on training prompts)"
    else:
        source = "given"
    from ..model.surgery import keep_from_remove
    for r in removals:                       # bad ids fail here, not after the dense measurement
        keep_from_remove(r, lm.anatomy.num_layers)
    from ..fingerprint import samples_digest
    j = _journal(out, "recovery", lm, ev.samples, train=samples_digest(tr.samples), fmt=fmt, mode=mode, steps=steps,
                 lr=lr, batch_size=batch_size, lora_r=lora_r, seed=seed, full_depth=full_depth, score=score_kind,
                 margin=margin)
    res = {**_meta(lm, ev, fmt, train_task=tr.name, train_split=tr.split, removal_source=source),
           **recover(lm, tr.samples, ev.samples, fmt, removals=removals, mode=mode, steps=steps, lr=lr,
                     batch_size=batch_size, lora_r=lora_r, seed=seed, log=log,
                     full_depth=full_depth, score_kind=score_kind, margin=margin, progress=progress, journal=j)}
    res = _finish(out, "recovery", res, [lambda r, o: F.recovery_plot(r, o / "recovery.png")])
    j.close()
    return res


def run_controls(out, *, model="gemma-3-270m", task="arc_easy", fmt="cloze", counts=None, trajectory=None,
                 seeds=(0, 1, 2), lm=None, task_kw=None, batch_size=16, score_kind="raw", margin="logit",
                 progress=True):
    from ..fingerprint import samples_digest
    from .controls import run_controls as rc
    ip = T.load_trajectory(trajectory) if trajectory else None
    if ip is not None and ip.get("status") == "running":      # its layer counts are not all there yet
        raise ValueError(f"--trajectory {trajectory}: still running; the controls follow its layer counts, so let it "
                         "finish first")
    lm, t = _lm(model, lm), _task(task, **(task_kw or {}))
    _fits(lm, fmt, t)
    j = _journal(out, "controls", lm, t.samples, fmt=fmt, score=score_kind, margin=margin, batch_size=batch_size,
                 dense_prefix=True, outcomes=True)
    # the samples digest and score let `plan-eval` use these controls as ground truth on the same questions
    res = {**_meta(lm, t, fmt, trajectory=str(trajectory) if trajectory else None,
                   fingerprint={"samples": samples_digest(t.samples)}, params={"score": score_kind},
                   chance=sum(1 / s.n_options for s in t.samples) / len(t.samples)),
           **rc(lm, t.samples, fmt, counts=counts, ip_trajectory=ip, seeds=seeds, batch_size=batch_size,
                score_kind=score_kind, margin=margin, progress=progress, journal=j)}
    res = _finish(out, "controls", res, [lambda r, o: F.methods_plot(r["methods"], r["dense"]["acc"],
                                                                     o / "controls.png", r.get("task", ""))])
    j.close()
    return res
