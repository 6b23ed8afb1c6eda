"""The prediction, from single-layer removals of the dense model only.

Measured: for every layer i, the per-question outcome (correct, DM) of the model without layer i (L final-depth
passes; a pruning trajectory needs ~L per removed layer and the full-depth lens). The removal order is by damage,
the least harmful layer first (mean DM change, then accuracy change, then the later layer: ties go to depth, where
the Decisive Phase lies). The accuracy of the model without the first k layers of the order is predicted
first-order (the single-layer changes add up):

    acc_k = dense_acc + c * sum_{i in first k} d_acc_i        (c = 1: plain additivity)

with a question-bootstrap band (the same resamples for every layer, so the sum's CI carries their correlation; each
replicate re-ranks the layers, so the band includes the choice of the order).
`c` is the one fitted constant, found leave-one-out on finished trajectories by `evaluate.py`; plain additivity is
the default because a fitted value is only as good as the (model, task) points it came from. The critical ratio
is the first k/L whose predicted accuracy falls below chance + gamma (dense - chance) (method.md), its interval from
the band; the recommended set for `max_drop` is the longest prefix whose expected drop stays within it, and the
"safe" set the longest whose whole band does.
"""
from __future__ import annotations

import numpy as np


def removal_order(d_dm: np.ndarray, d_acc: np.ndarray) -> list[int]:
    """Least harmful first: by DM change (descending), then accuracy change, then the deeper layer."""
    L = len(d_dm)
    return sorted(range(L), key=lambda i: (-d_dm[i], -d_acc[i], -i))


def _orders(d: np.ndarray) -> np.ndarray:
    """removal_order for each row of d [B, L, 2] (mean changes: accuracy, DM) -> [B, L]."""
    L = d.shape[1]
    depth = np.arange(L)
    return np.stack([np.lexsort((-depth, -x[:, 0], -x[:, 1])) for x in d])


def predicted_curve(dense: np.ndarray, single: np.ndarray, order: list[int], *, c: float = 1.0, n_boot: int = 1000,
                    seed: int = 0, chance: float | None = None) -> dict:
    """dense [N, 2] and single [N, L, 2] per-question (correct, DM). Returns for k = 0..L-1 the predicted accuracy
    and DM of the model without the first k layers of `order`, with 95% bands (`acc`, `acc_ci`, `dm`, `dm_ci`;
    accuracy clipped below at `chance` when given) and the predicted change against dense (`d_acc`, `d_acc_ci`).

    The bands account for the order being chosen on these very questions: every bootstrap replicate ranks the
    layers again on its own resample and sums its own k least harmful ones (`boot_acc`, `boot_dense` per replicate),
    so the band is that of the procedure "remove the k layers that look least harmful", not of a fixed set that
    the data already flattered."""
    N, L, _ = single.shape
    delta = single - dense[:, None, :]                                       # [N, L, 2]
    point = dense.mean(0) + c * np.concatenate([[np.zeros(2)], np.cumsum(delta[:, order].mean(0), 0)])[:L]
    idx = np.random.default_rng(seed).integers(0, N, size=(n_boot, N))
    db = np.stack([delta[i].mean(0) for i in idx])                          # [B, L, 2] replicate mean changes
    ob = _orders(db)
    cb = c * np.concatenate([np.zeros((n_boot, 1, 2)),
                             np.cumsum(np.take_along_axis(db, ob[:, :, None], 1), 1)], 1)[:, :L]   # [B, L, 2]
    base = dense[idx].mean(1)                                                # [B, 2]
    boot = base[:, None, :] + cb
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    dlo, dhi = np.percentile(cb, [2.5, 97.5], axis=0)
    if chance is not None:
        point[:, 0], lo[:, 0], hi[:, 0] = (np.maximum(x[:, 0], chance) for x in (point, lo, hi))
    return {"k": list(range(L)), "acc": point[:, 0].tolist(), "acc_ci": np.stack([lo[:, 0], hi[:, 0]], 1).tolist(),
            "dm": point[:, 1].tolist(), "dm_ci": np.stack([lo[:, 1], hi[:, 1]], 1).tolist(),
            "d_acc": (c * np.concatenate([[0.0], np.cumsum(delta[:, order, 0].mean(0))])[:L]).tolist(),   # unclipped
            "d_acc_ci": np.stack([dlo[:, 0], dhi[:, 0]], 1).tolist(),
            "boot_acc": boot[..., 0], "boot_dense": base[:, 0]}


def critical_k(acc: np.ndarray, dense_acc: float, chance: float, gamma: float = 0.5) -> int | None:
    """First k whose accuracy is below chance + gamma (dense - chance); None: never (censored)."""
    thr = chance + gamma * (dense_acc - chance)
    below = np.flatnonzero(np.asarray(acc) < thr)
    return int(below[0]) if below.size else None


def critical_interval(boot_acc: np.ndarray, boot_dense: np.ndarray, chance: float, gamma: float = 0.5) -> list:
    """95% interval of the critical k over the bootstrap curves, each against its own replicate's dense accuracy
    (a None bound: no collapse within L-1 removals in that tail)."""
    L = boot_acc.shape[1]
    ks = np.array([L if (k := critical_k(b, d, chance, gamma)) is None else k for b, d in zip(boot_acc, boot_dense)])
    lo, hi = (int(np.percentile(ks, q, method="inverted_cdf")) for q in (2.5, 97.5))
    return [None if lo >= L else lo, None if hi >= L else hi]


def recommend(curve: dict, max_drop: float, safe: bool = False) -> int:
    """Largest k such that every prefix up to it keeps the predicted accuracy change above -max_drop: the expected
    change (the point prediction, what `--max-drop` asks for), or with safe=True the lower end of its 95% band (at a
    few hundred questions a single layer's band is already wider than a 5-point budget, so the safe set is often
    empty: it is reported beside, not instead). 0: nothing can go."""
    best = 0
    for k, d, (lo, _) in zip(curve["k"], curve["d_acc"], curve["d_acc_ci"]):
        if k > 0:
            if -(lo if safe else d) > max_drop:
                break
            best = k
    return best
