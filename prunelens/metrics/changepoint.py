"""The accuracy change-point: the depth where the layer-accuracy curve acc_0..acc_L rises, by one mean shift.

Rule (documented choice), in two steps.
1. Levels. Fit the curve with two constant levels, acc ~ mu_low on depths 0..s-1 and mu_high on
s..L, by least squares, and take the split s in 1..L that minimises the residual sum of squares. This is the exact
single change-point of the l2 (mean-shift) cost, what `ruptures.Dynp(model="l2").fit(acc).predict(n_bkps=1)` returns
(and Binseg with one breakpoint; its index is our s), computed in closed form: the RSS drop of split s is the CUSUM
statistic s (D - s) / D * (mu_high - mu_low)^2, so a whole bootstrap ([B, D] curves) is a few vectorised numpy
operations instead of B library calls. Ties go to the shallowest split.

Why this rule and not a threshold crossing: it uses the whole curve (floor and ceiling are estimated, not assumed,
so it works for 2-option and 5-option tasks alike), it does not need a chance level, and it is the textbook
estimator that ruptures implements. Why not a logistic fit: a non-linear fit per bootstrap replicate is slow and
fails to converge on flat curves, exactly the case that must come out "not identified".

2. Depth. The change-point is the depth from which the curve stays above the half-rise level
(mu_low + mu_high) / 2 (`transition.sustained_crossing`, the same sustained rule as the Transition Point, applied to
accuracy), and its `crossing` the point between depths where the curve, linear between depths, meets that level. Why
not the split s itself: s is an argmax over a grid and jumps between whole depths; the half-rise depth is a smooth
function of the curve (a logistic fit's midpoint without the fit), and for a symmetric rise it is the same place.

A *rise* is required: when the best split is a fall (mu_high <= mu_low), or the curve is exactly flat (no split
explains anything), there is no change-point (None). On a flat noisy curve the sign of the best split is a coin
flip between resamples, so its bootstrap CI reaches "none" and the estimator reports "not identified".
"""
from __future__ import annotations

import numpy as np

from .transition import sustained_crossing


def mean_shift(curves) -> tuple[np.ndarray, np.ndarray]:
    """[B, D] curves (or [D]) -> (split [B] int: first depth of the high segment, D where there is no rise;
    height [B] = mu_high - mu_low at the best split)."""
    a = np.asarray(curves, dtype=np.float64)
    one = a.ndim == 1
    a = np.atleast_2d(a)
    b, d = a.shape
    if d < 2:
        raise ValueError(f"need at least 2 depths, got {d}")
    c = np.cumsum(a, axis=1)                                     # [B, D]
    s = np.arange(1, d)                                          # candidate splits 1..L
    low = c[:, :-1] / s                                          # mean of 0..s-1
    high = (c[:, -1:] - c[:, :-1]) / (d - s)                     # mean of s..L
    gap = high - low                                             # [B, L]
    stat = s * (d - s) / d * gap ** 2
    # Round away float noise so an exactly flat curve (all stats ~1e-33) has no split and ties pick the shallowest.
    stat = np.round(stat, 12)
    best = np.argmax(stat, axis=1)
    height = gap[np.arange(b), best]
    split = np.where((stat[np.arange(b), best] > 0) & (height > 0), best + 1, d)
    return (split[0], height[0]) if one else (split, height)


def half_rise(curves) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """[B, D] curves -> (point [B] int, D = none; crossing [B] float, inf = none; height [B] = mu_high - mu_low;
    split [B] of the mean-shift fit, D = no rise). See the module docstring."""
    a = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    b, d = a.shape
    split, height = mean_shift(a)
    rise = split < d
    s = np.where(rise, split, 1)
    c = np.cumsum(a, axis=1)
    r = np.arange(b)
    low = c[r, s - 1] / s
    high = (c[:, -1] - c[r, s - 1]) / (d - s)
    point, crossing = sustained_crossing(a, (low + high) / 2)
    return np.where(rise, point, d), np.where(rise, crossing, np.inf), height, split
