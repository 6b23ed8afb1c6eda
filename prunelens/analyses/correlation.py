"""Critical pruning ratio of a trajectory, and its Pearson correlation with the relative Transition-Point depth
across (model, task) pairs (the paper's Figure 8)."""
from __future__ import annotations

import math

import numpy as np

from ..metrics.chance import judge, levels
from ..metrics.estimators import NAMES
from . import trajectories as T


def critical_ratio(ratios, accs, dense_acc: float, chance: float, gamma: float = 0.5) -> float | None:
    """Smallest ratio whose accuracy falls below chance + gamma * (dense - chance). None: never falls (censored:
    the critical ratio is above the largest ratio tried). ratios/accs: [S] in any order."""
    thr = chance + gamma * (dense_acc - chance)
    below = [r for r, a in zip(ratios, accs) if a < thr]
    return float(min(below)) if below else None


def pearson(x, y, ci: float = 0.95) -> dict:
    """Pearson r, two-sided p (scipy) and the Fisher-z CI of r (needs n >= 4); None when n < 3 or a variable is
    constant."""
    from scipy import stats
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 3 or np.std(x) == 0 or np.std(y) == 0:
        return {"r": None, "p": None, "n": n, "r_ci": None}
    r, p = stats.pearsonr(x, y)
    r_ci = None
    if n >= 4:
        z, se = math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12)), 1 / math.sqrt(n - 3)
        q = stats.norm.ppf(0.5 + ci / 2)
        r_ci = [float(math.tanh(z - q * se)), float(math.tanh(z + q * se))]
    return {"r": float(r), "p": float(p), "n": n, "r_ci": r_ci}


# The transition estimators of metrics/estimators.py that can stand in for the TP in Figure 8.
ESTIMATORS = tuple(NAMES)


def point_from_trajectory(traj: dict, gamma: float = 0.5, source: str = "") -> dict:
    """One (model, task) point: TP/L of the dense model, the critical ratio, and what it rests on."""
    L = T.num_layers(traj)
    d = T.dense(traj)
    st = [s for s in T.steps(traj) if s.get("removed")]
    ch = T.chance(traj)
    dense_acc = T.final_acc(d) if d else None
    cr = None if ch is None or dense_acc is None else critical_ratio(
        [s["ratio"] for s in st], [T.final_acc(s) for s in st], dense_acc, ch, gamma)
    # A run still going has no critical ratio yet: not censored (it may yet fall), and not a crossing already
    # reached either (SKIP-Prun's steps are the best state found per count, which a restart can still replace).
    running = traj.get("status") == "running"
    cr = None if running else cr
    return {"model": traj.get("model") or traj.get("model_path"), "task": traj.get("task"),
            "method": T.method(traj), "num_layers": L, "tp_relative": T.tp_relative(d, L),
            # The TP's question-bootstrap CI, when the dense measurement has it; None bound = "no TP" there.
            "tp_ci_relative": [None if x is None else x / L for x in d["tp_ci"]] if d.get("tp_ci") and L else None,
            # every transition estimator's depth / L, with its verdict, when the dense step has them
            "estimators": {k: {"relative": None if e.get("point") is None or not L else e["point"] / L,
                               "ci_relative": [None if x is None else x / L for x in e["ci"]]
                               if e.get("ci") and L else None, "verdict": e.get("verdict")}
                           for k, e in (d.get("estimators") or {}).items() if k in ESTIMATORS},
            "n_samples": traj.get("n_samples"), "dense_acc": dense_acc, "chance": ch, "critical_ratio": cr,
            "censored": cr is None and not running, "running": running, "max_ratio": max((s["ratio"] for s in st), default=None), "source": source,
            **_chance_check(traj, d, dense_acc, ch)}


def _chance_check(traj: dict, d: dict, acc, uniform) -> dict:
    """metrics.chance.judge on the dense model of a trajectory, with the gold shares it records
    (`label_distribution`). at_chance None: not known (no accuracy or chance; or above the uniform level with the
    gold shares not recorded). A point at chance has a "critical ratio" made of noise."""
    lab = d.get("label_distribution")
    const = max(lab) if lab else None
    if acc is None or uniform is None or not traj.get("n_samples"):
        return {"constant_chance": const, "at_chance": None}
    ok, why = judge(acc, traj["n_samples"], levels(uniform, const, int(np.argmax(lab)) if lab else None))
    return {"constant_chance": const, "at_chance": None if ok is None else not ok, "at_chance_why": why}


def correlate(points: list[dict]) -> dict:
    """Pearson r between tp_relative and critical_ratio over the usable points (both defined), one point per
    (model, task): several runs on one pair are not independent samples. The one kept does not depend on the order
    of the inputs: a finished run first, then IP, then a run that has the transition estimators, then the most
    questions, then the source path."""
    rank = {"iterative+skip": 0, "iterative": 1, "ip": 1}
    best: dict = {}
    # a finished run first: a running one has no critical ratio yet and must not hide a finished one of the pair
    for p in sorted(points, key=lambda p: (bool(p.get("running")), rank.get(p["method"], 9), not p.get("estimators"),
                                           -(p.get("n_samples") or 0), str(p.get("source", "")))):
        best.setdefault((p["model"], p["task"]), p)
    use = [p for p in best.values() if p["tp_relative"] is not None and p["critical_ratio"] is not None
           and not p.get("at_chance")]
    res = pearson([p["tp_relative"] for p in use], [p["critical_ratio"] for p in use])
    if res["r"] is not None:
        slope, icpt = np.polyfit([p["tp_relative"] for p in use], [p["critical_ratio"] for p in use], 1)
        res["fit"] = {"slope": float(slope), "intercept": float(icpt)}
    # Honest about n: say how many points were dropped and why, and how far r could be from zero by chance.
    res["dropped"] = [{"model": p["model"], "task": p["task"], "method": p["method"],
                       "why": "another run's point represents this (model, task)"
                       if p is not best[(p["model"], p["task"])] else f"at chance: {p['at_chance_why']}"
                       if p.get("at_chance") else "trajectory still running: its critical ratio is not settled"
                       if p.get("running") else "no Transition Point"
                       if p["tp_relative"] is None else "accuracy never fell below "
                       f"the threshold up to ratio {p['max_ratio']}"} for p in points if p not in use]
    res["min_significant_r"] = _min_sig_r(res["n"])
    # The same correlation with each estimator in place of the TP, over the same one-point-per-pair set.
    res["by_estimator"] = {}
    for k in ESTIMATORS:
        pts = [p for p in best.values() if p["critical_ratio"] is not None and not p.get("at_chance")
               and (p.get("estimators") or {}).get(k, {}).get("relative") is not None]
        res["by_estimator"][k] = {**pearson([p["estimators"][k]["relative"] for p in pts],
                                            [p["critical_ratio"] for p in pts]),
                                  "n_identified": sum(p["estimators"][k]["verdict"] == "identified" for p in pts),
                                  "sources": [p.get("source", "") for p in pts]}     # the points this r rests on
    res["used_sources"] = [p.get("source", "") for p in use]
    return {"points": points, **res}


def _min_sig_r(n: int, alpha: float = 0.05) -> float | None:
    """|r| needed for p < alpha with n points (t test), to show how much a small n can resolve."""
    if n < 3:
        return None
    from scipy import stats
    t = stats.t.ppf(1 - alpha / 2, n - 2)
    return float(t / math.sqrt(n - 2 + t * t))
