"""The prediction, from single-layer removals of the dense model only.

Measured: for every layer i, the per-question outcome (correct, DM) of the model without layer i (L final-depth
passes; a pruning trajectory needs ~L per removed layer and the full-depth lens). The removal order is by damage,
the least harmful layer first (mean DM change, then accuracy change, then the later layer: ties go to depth, where
the Decisive Phase lies). The accuracy of the model without the first k layers of the order is predicted
first-order (the single-layer changes add up):

    acc_k = dense_acc + c * sum_{i in first k} d_acc_i        (c = 1: plain additivity)

with a question-bootstrap band (the same resamples for every layer, so the sum's CI carries their correlation).
`c` is the one fitted constant, found leave-one-out on finished trajectories by `evaluate.py`; plain additivity is
the default because a fitted value is only as good as the (model, task) points it came from. The critical ratio
is the first k/L whose predicted accuracy falls below chance + gamma (dense - chance) (method.md), its interval from
the band; the recommended set for `max_drop` is the largest prefix whose upper-band drop stays within it.
"""
from __future__ import annotations

import numpy as np


def removal_order(d_dm: np.ndarray, d_acc: np.ndarray) -> list[int]:
    """Least harmful first: by DM change (descending), then accuracy change, then the deeper layer."""
    L = len(d_dm)
    return sorted(range(L), key=lambda i: (-d_dm[i], -d_acc[i], -i))


def predicted_curve(dense: np.ndarray, single: np.ndarray, order: list[int], *, c: float = 1.0, n_boot: int = 1000,
                    seed: int = 0, chance: float | None = None) -> dict:
    """dense [N, 2] and single [N, L, 2] per-question (correct, DM). Returns for k = 0..L-1 the predicted accuracy
    and DM with 95% bands (`acc`, `acc_ci`, `dm`, `dm_ci`), clipped below at `chance` for accuracy when given."""
    N, L, _ = single.shape
    delta = single - dense[:, None, :]                                       # [N, L, 2]
    cum = np.concatenate([np.zeros((N, 1, 2)), np.cumsum(delta[:, order], axis=1)], 1)[:, :L]   # [N, k, 2]
    idx = np.random.default_rng(seed).integers(0, N, size=(n_boot, N))
    base = dense.mean(0)                                                     # [2]
    point = base + c * cum.mean(0)                                           # [L, 2]
    boot = dense[idx].mean(1)[:, None, :] + c * cum[idx].mean(1)             # [B, L, 2]
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    dlo, dhi = np.percentile(c * cum[idx].mean(1), [2.5, 97.5], axis=0)    # the change itself, paired
    if chance is not None:
        point[:, 0], lo[:, 0], hi[:, 0] = (np.maximum(x[:, 0], chance) for x in (point, lo, hi))
    return {"k": list(range(L)), "acc": point[:, 0].tolist(), "acc_ci": np.stack([lo[:, 0], hi[:, 0]], 1).tolist(),
            "dm": point[:, 1].tolist(), "dm_ci": np.stack([lo[:, 1], hi[:, 1]], 1).tolist(),
            "d_acc": (c * cum.mean(0)[:, 0]).tolist(), "d_acc_ci": np.stack([dlo[:, 0], dhi[:, 0]], 1).tolist(),
            "boot_acc": boot[..., 0]}


def critical_k(acc: np.ndarray, dense_acc: float, chance: float, gamma: float = 0.5) -> int | None:
    """First k whose accuracy is below chance + gamma (dense - chance); None: never (censored)."""
    thr = chance + gamma * (dense_acc - chance)
    below = np.flatnonzero(np.asarray(acc) < thr)
    return int(below[0]) if below.size else None


def critical_interval(boot_acc: np.ndarray, dense_acc: float, chance: float, gamma: float = 0.5) -> list:
    """95% interval of the critical k over the bootstrap curves (a None bound: no collapse within L-1 removals in
    that tail)."""
    L = boot_acc.shape[1]
    ks = np.array([L if (k := critical_k(b, dense_acc, chance, gamma)) is None else k for b in boot_acc])
    lo, hi = (int(np.percentile(ks, q, method="inverted_cdf")) for q in (2.5, 97.5))
    return [None if lo >= L else lo, None if hi >= L else hi]


def recommend(curve: dict, max_drop: float) -> int:
    """Largest k such that every prefix up to it has a predicted accuracy change whose 95% band stays above
    -max_drop (a paired band: the change, not the absolute accuracy). 0: nothing can go."""
    best = 0
    for k, (lo, _) in zip(curve["k"], curve["d_acc_ci"]):
        if k > 0:
            if -lo > max_drop:
                break
            best = k
    return best
