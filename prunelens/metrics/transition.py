"""Transition Point (TP) and the Silent / Decisive phases.

Depths are indexed 0..L: depth 0 is the embedding output h_0, depth l >= 1 the residual stream after decoder layer
l-1. So a model with L layers has num_depths = L + 1 and relative depth is tp / L.
"""
from __future__ import annotations

import numpy as np

from .bootstrap import _to_numpy, bootstrap_means


def transition_point(dm_mean, tau: float = 0.0) -> int | None:
    """Smallest depth l such that dm_mean[l'] > tau for every l' >= l (a sustained crossing).

    dm_mean: [D] mean decision margin per depth. Dips below tau before the last crossing do not count.
    Returns None when dm_mean[-1] <= tau: no transition, the model is Silent throughout.
    tau >= 0 is the paper's optional tolerance (default 0).
    """
    dm = _to_numpy(dm_mean)
    if dm.ndim != 1 or dm.size == 0:
        raise ValueError(f"dm_mean must be a non-empty [D] array, got shape {dm.shape}")
    if np.isnan(dm).any():
        raise ValueError("dm_mean contains NaN")
    if not tau >= 0:        # NaN too
        raise ValueError(f"tau must be >= 0, got {tau}")
    not_above = np.flatnonzero(~(dm > tau))
    if not_above.size == 0:
        return 0
    last = int(not_above[-1])
    return None if last == dm.size - 1 else last + 1


def transition_points(dm_means, tau: float = 0.0) -> np.ndarray:
    """Vectorised `transition_point` over rows: [B, D] mean-DM curves -> [B] int, with D (= "no TP", sorting after
    depth L) where the curve is not above tau at the last depth. Same rule, no Python loop over bootstrap replicates."""
    m = _to_numpy(dm_means)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"dm_means must be [B, D], got shape {m.shape}")
    if not tau >= 0:        # NaN too
        raise ValueError(f"tau must be >= 0, got {tau}")
    d = m.shape[1]
    not_above = ~(m > tau)                                              # NaN counts as not above, like the scalar rule
    last = np.where(not_above.any(1), d - 1 - np.argmax(not_above[:, ::-1], axis=1), -1)   # last depth <= tau
    return np.where(last == d - 1, d, last + 1)


def sustained_crossing(curves, level=0.0, strict: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Where each row of `curves` [B, D] rises above `level` (scalar or [B]) for good, as a depth and as a point.

    point [B] int: the smallest depth l with curve > level (>= when not strict) at every l' >= l; D where the last
    depth is not above ("none": it sorts after depth L). crossing [B] float: the depth where the straight line
    between depths j0 = point - 1 (the last depth not above) and point meets `level`, in [j0, point]; 0.0 when
    point = 0 and inf when there is none. The crossing is the same rule read between depths: the integer point is
    the first whole depth after it, and it moves continuously with the curve, so a bootstrap CI of it is not
    coarsened to whole depths (whose nearest-rank CIs cover more than their nominal level).
    """
    c = _to_numpy(curves)
    if c.ndim != 2 or c.shape[1] < 2:
        raise ValueError(f"curves must be [B, D] with D >= 2, got shape {c.shape}")
    b, d = c.shape
    lev = np.broadcast_to(np.asarray(level, dtype=np.float64), (b,))
    above = c > lev[:, None] if strict else c >= lev[:, None]
    below = ~above
    j0 = np.where(below.any(1), d - 1 - np.argmax(below[:, ::-1], axis=1), -1)
    point = j0 + 1                                                      # = d when j0 = L: none
    r = np.arange(b)
    j = np.clip(j0, 0, d - 2)
    lo, hi = c[r, j], c[r, j + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.where(hi > lo, (lev - lo) / (hi - lo), 1.0), 0.0, 1.0)
    crossing = np.where(j0 < 0, 0.0, np.where(point >= d, np.inf, j + frac))
    return point, crossing


def phases(tp: int | None, num_depths: int) -> dict:
    """Silent phase = depths before TP, Decisive phase = TP..L, as inclusive [first, last] lists (None if empty).

    num_depths = L + 1 (depth 0 is the embeddings). Also returns `transition_point` and `transition_relative`
    = tp / L (None when there is no TP).
    """
    if num_depths < 2:
        raise ValueError(f"num_depths must be >= 2 (embeddings + at least one layer), got {num_depths}")
    last = num_depths - 1  # = L
    if tp is None:
        return {"transition_point": None, "transition_relative": None,
                "silent_phase": [0, last], "decisive_phase": None}
    tp = int(tp)
    if not 0 <= tp <= last:
        raise ValueError(f"tp={tp} out of range 0..{last}")
    return {"transition_point": tp, "transition_relative": tp / last,
            "silent_phase": [0, tp - 1] if tp > 0 else None, "decisive_phase": [tp, last]}


def transition_point_bootstrap(dm, tau: float = 0.0, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> dict:
    """How well n questions pin down the Transition Point: resample questions, recompute the mean-DM crossing.

    dm: [N, D] per-question decision margin at every depth (D = L + 1). The TP is a property of the mean curve, so a
    flat curve near tau gives a TP that moves by many layers between resamples even when the point estimate looks
    sharp; this is the error bar the referee asks for on the TP itself.
    Returns {"tp_ci": [lo, hi], "tp_none_frac", "tp_boot_counts"}. "No TP" (silent at the last depth) sorts after
    depth L, so a bound that falls there is None; tp_none_frac is the share of resamples with no TP.
    """
    d = _to_numpy(dm)
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] < 2:
        raise ValueError(f"dm must be [N, D] with N >= 1 and D >= 2, got shape {d.shape}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    none = d.shape[1]                                                   # "no TP" sorts after depth L = D - 1
    tps = transition_points(bootstrap_means(d, n_boot, seed), tau)
    alpha = (1.0 - ci) / 2.0
    # Nearest-rank percentiles keep the bounds on integer depths (interpolating between 12 and "none" is meaningless).
    lo, hi = (int(np.percentile(tps, 100 * q, method="inverted_cdf")) for q in (alpha, 1 - alpha))
    counts = {("none" if t == none else str(t)): int(c) for t, c in zip(*np.unique(tps, return_counts=True))}
    return {"tp_ci": [None if lo == none else lo, None if hi == none else hi],
            "tp_none_frac": float((tps == none).mean()), "tp_boot_counts": counts}


def tp_ci_text(ci) -> str:
    """A TP CI for people: "[13, none]", where none is the "no TP" tail."""
    return "[" + ", ".join("none" if x is None else str(x) for x in ci) + "]"
