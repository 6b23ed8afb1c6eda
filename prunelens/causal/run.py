"""Orchestration of the causal tests: pick the removal set, run, write `<out>/restore.json` / `skips.json` and their
figures as one staged run (analyses/run.py conventions)."""
from __future__ import annotations

from ..analyses import trajectories as T
from ..analyses.run import _finish, _fits, _journal, _levels, _lm, _meta, _task
from . import figures as F


def critical_removal(traj: dict, gamma: float = 0.5) -> tuple[list[int], float]:
    """The removal set of the first trajectory step whose accuracy is below chance + gamma (dense - chance): the
    state where accuracy has fallen `gamma` of the way to chance (method.md's critical ratio). Raises ValueError when
    the trajectory never falls that far or lacks what the rule needs."""
    from ..analyses.correlation import critical_ratio
    if traj.get("status") == "running":
        # without a crossing yet, a later step may still give one; with SKIP-Prun a restart can also replace the
        # crossing step: either way it is not settled
        raise ValueError("--ratio critical: the trajectory is still running (status 'running'), so its critical "
                         "step is not settled; let it finish, or give --remove")
    st = [s for s in T.steps(traj) if s.get("removed")]
    ch, d = T.chance(traj), T.dense(traj)
    if ch is None or not d or not st:
        raise ValueError("--ratio critical: the trajectory lacks its dense accuracy, chance level or steps")
    cr = critical_ratio([s["ratio"] for s in st], [T.final_acc(s) for s in st], T.final_acc(d), ch, gamma)
    if cr is None:
        raise ValueError(f"--ratio critical: accuracy never falls halfway to chance in this trajectory (largest "
                         f"ratio {max(s['ratio'] for s in st):.3f}); give a --ratio")
    return T.removed_at(traj, cr), cr


def removal(remove=None, trajectory=None, ratio=None) -> tuple[list[int], str]:
    """(removed layer ids, where they came from) from --remove, or --trajectory with --ratio R | critical."""
    if (remove is None) == (trajectory is None):
        raise ValueError("give exactly one of --remove and --trajectory (with --ratio R or --ratio critical)")
    if remove is not None:
        return sorted(remove), "given"
    if ratio is None:
        raise ValueError("--trajectory needs --ratio (a fraction removed, or 'critical')")
    tr = T.load_trajectory(trajectory)
    if ratio == "critical":
        rem, cr = critical_removal(tr)
        return sorted(rem), f"{trajectory} at its critical ratio {cr:.3f} (accuracy halfway to chance)"
    return sorted(T.removed_at(tr, float(ratio))), f"{trajectory} at ratio {float(ratio):.3f}"


def run_restore(out, *, model="gemma-3-270m", task="arc_easy", fmt="cloze", remove=None, trajectory=None, ratio=None,
                depths=None, modes=None, tp=None, phases=True, lm=None, task_kw=None, batch_size=16, score_kind="raw",
                margin="logit", n_boot=1000, seed=0, progress=True) -> dict:
    from ..model.surgery import keep_from_remove
    from .restore import MODES, restore_curve
    rem, source = removal(remove, trajectory, ratio)
    lm, t = _lm(model, lm), _task(task, **(task_kw or {}))
    keep_from_remove(rem, lm.anatomy.num_layers)           # bad ids fail before any compute
    _fits(lm, fmt, t)
    j = _journal(out, "restore", lm, t.samples, fmt=fmt, removed=rem, score=score_kind, margin=margin,
                 batch_size=batch_size)
    res = {**_meta(lm, t, fmt, removal_source=source), "chance_levels": _levels(t.samples),
           **restore_curve(lm, t.samples, fmt, rem, depths=depths, modes=tuple(modes or MODES), tp=tp,
                           phases=phases, score_kind=score_kind, margin=margin, n_boot=n_boot, seed=seed,
                           batch_size=batch_size, progress=progress, journal=j)}
    res = _finish(out, "restore", res, [lambda r, o: F.restore_figure(r, o / "restore.png")])
    j.close()
    return res


def run_skips(out, *, model="gemma-3-270m", task="arc_easy", fmt="cloze", layers=None, decision=True, lm=None,
              task_kw=None, batch_size=8, score_kind="raw", margin="logit", n_boot=1000, seed=0,
              progress=True) -> dict:
    from .skip import skip_effects
    lm, t = _lm(model, lm), _task(task, **(task_kw or {}))
    _fits(lm, fmt, t)
    j = _journal(out, "skips", lm, t.samples, fmt=fmt, layers=layers, score=score_kind, margin=margin, n_boot=n_boot,
                 seed=seed, batch_size=batch_size)
    res = {**_meta(lm, t, fmt), "chance_levels": _levels(t.samples),
           **skip_effects(lm, t.samples, fmt, layers=layers, decision=decision, score_kind=score_kind, margin=margin,
                          n_boot=n_boot, seed=seed, batch_size=batch_size, progress=progress, journal=j)}
    res = _finish(out, "skips", res, [lambda r, o: F.skip_figure(r, o / "skips.png")])
    j.close()
    return res
