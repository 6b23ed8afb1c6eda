"""Per-question decision depth and the "fraction decided by depth l" curve (a Kaplan-Meier estimate).

The mean-DM Transition Point is a property of the *mean* curve: one question with a huge margin can move it. The
decision depth asks each question instead: from which depth on does the lens's answer stop changing?

Two rules, both on the lens's predicted option `predictions(scores, n_options)` (padding and lm-eval tie rules
included), target option y_i:
  - "pred": y_i = the prediction at the final depth L (a saturation / prediction-depth rule: when does the network
    settle on the answer it will give, right or wrong);
  - "gold": y_i = the gold option (when does the network settle on the *correct* answer).
The stable run r_i is the number of trailing depths (ending at L) whose prediction equals y_i.

Why a minimum run: "prediction at l equals the final prediction at every l' >= l" holds at l = L for every question
under the "pred" rule, so the pure rule decides everybody at depth L at the latest and the curve would reach 1 by
construction. A run of one depth is no evidence of a decision. So question i is *decided* at depth d_i = D - r_i only
if r_i >= min_run (default `default_min_run(L)` = max(2, ceil(L / 10)): stable over at least the last tenth of the
network, so the rule means the same on 18- and 32-layer models); otherwise it is *censored* at depth
c = D - min_run = L - min_run + 1, the last depth at which a decision could still be observed: all we know is that it
was not decided by c. Under the "gold" rule a question wrong at the final depth has r_i = 0 and is censored, never
dropped (dropping it would make the remaining questions look decided early).

Because every censoring time is c, at or after every possible decision depth, the Kaplan-Meier estimate equals the
plain fraction of all N questions decided by l, for l = 0..c; the general product-limit form is kept so the code
stays right if censoring times ever differ between questions. The curve is undefined after c and is reported on
0..c only. The median decision depth is the first l with fraction decided >= 1/2, None when fewer than half are
ever decided; its `crossing` is where the curve, linear between depths, reaches 1/2 (in (point - 1, point]).
"""
from __future__ import annotations

import math

import numpy as np

from .transition import sustained_crossing

_EPS = 1e-9          # the product-limit form reaches exactly 1/2 only up to rounding


def default_min_run(num_layers: int) -> int:
    """max(2, ceil(L / 10)): see the module docstring for why a run of one depth cannot count as a decision."""
    return max(2, math.ceil(num_layers / 10))


def decision_depths(pred, target, min_run: int) -> tuple[np.ndarray, np.ndarray]:
    """pred [N, D] predicted option per depth, target [N] -> (time [N] int, decided [N] bool).

    time = first depth of the trailing run where pred == target when that run is >= min_run depths long (decided),
    else the censoring depth D - min_run (not decided by then).
    """
    p = np.asarray(pred)
    y = np.asarray(target)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(f"pred must be [N, D] and target [N], got {p.shape} and {y.shape}")
    d = p.shape[1]
    if not 1 <= min_run <= d - 1:
        raise ValueError(f"min_run must lie in 1..L={d - 1}, got {min_run}")
    off = p != y[:, None]                                              # [N, D]
    # trailing run of matches = D - (last mismatch + 1); no mismatch -> D
    last_off = np.where(off.any(1), d - 1 - np.argmax(off[:, ::-1], axis=1), -1)
    run = d - 1 - last_off
    decided = run >= min_run
    return np.where(decided, d - run, d - min_run), decided


def km_fraction_decided(time, decided, length: int, weights=None) -> np.ndarray:
    """Kaplan-Meier fraction decided by depth l = 1 - S(l), for l = 0..length-1.

    time [N] (< length), decided [N] from `decision_depths` (length = D - min_run + 1, so every resample's curve has
    the same depths); weights [B, N] question multiplicities (bootstrap resamples; None = each question once)
    -> [B, length] (or [length] without weights). A question censored at c is at risk at c (it was not decided at
    c), the usual convention.
    """
    t = np.asarray(time, dtype=np.int64)
    e = np.asarray(decided, dtype=bool)
    n = t.shape[0]
    if n and (t.min() < 0 or t.max() >= length):
        raise ValueError(f"times must lie in 0..{length - 1}")
    w = np.ones((1, n)) if weights is None else np.asarray(weights, dtype=np.float64)
    c = length
    # Weighted counts of decisions and censorings per depth: a grouped column sum of w (cheaper than w @ one-hot,
    # whose BLAS call costs more than the arithmetic at these sizes).
    code = t + c * (~e)                                                 # decided at t -> t; censored at t -> c + t
    order = np.argsort(code, kind="stable")
    uniq, start = np.unique(code[order], return_index=True)
    counts = np.zeros((w.shape[0], 2 * c))
    counts[:, uniq] = np.add.reduceat(w[:, order], start, axis=1)
    deaths, cens = counts[:, :c], counts[:, c:]                         # [B, C]
    gone_before = np.cumsum(deaths + cens, axis=1) - (deaths + cens)
    at_risk = w.sum(1, keepdims=True) - gone_before
    hazard = np.divide(deaths, at_risk, out=np.zeros_like(deaths), where=at_risk > 0)
    f = 1.0 - np.cumprod(1.0 - hazard, axis=1)
    return f[0] if weights is None else f


def median_depth(frac) -> tuple[np.ndarray, np.ndarray]:
    """Median decision depth from fraction-decided curves [B, C] (or [C]): (point, crossing) as in
    `transition.sustained_crossing` with level 1/2, not strict: point = the first depth with fraction decided >= 1/2
    (the curve never falls, so first = for good), C where fewer than half are ever decided; crossing = where the
    curve, linear between depths, reaches 1/2 (inf for none)."""
    f = np.asarray(frac, dtype=np.float64)
    point, crossing = sustained_crossing(np.atleast_2d(f), 0.5 - _EPS, strict=False)
    return (point[0], crossing[0]) if f.ndim == 1 else (point, crossing)
