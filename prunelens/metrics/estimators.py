"""Transition estimators side by side, from one set of question resamples, each with an identifiability verdict.

From per-question scores [N, D, K] (D = L + 1 depths):
  - mean_dm_tp: the paper's Transition Point, the sustained crossing of the mean DM above tau (method.md; the
    default definition, unchanged);
  - decision_depth_pred / decision_depth_gold: the median per-question decision depth (Kaplan-Meier, questions never
    decided are censored, not dropped), for the final-prediction rule and the gold-option rule (decision_depth.py),
    with the whole "fraction decided by depth l" curve and its pointwise bootstrap band;
  - acc_changepoint: the half-rise depth of the layer-accuracy curve between the two levels of its single l2
    mean-shift change-point (changepoint.py).
Each gives `point`, a whole depth (None = no transition), and `crossing`, the same rule read between depths (where
the curve, linear between depths, crosses its level; `transition.sustained_crossing`): point - 1 <= crossing <= point.

Uncertainty: every estimator is recomputed on the same B question resamples (one index draw, the one
`bootstrap_means` makes for this seed, so mean_dm_tp's `ci` is exactly `transition_point_bootstrap`'s tp_ci), and
`ci` / `crossing_ci` are nearest-rank percentile intervals of the resampled values, with "none" (no transition)
sorting after depth L; a bound in that tail is None. Nearest rank keeps `ci` on whole depths (interpolating between
12 and "none" means nothing). `crossing_ci` is the calibrated interval: at n=100 it covers the planted transition in
92-96% of simulations (250 each; L = 29 and 18 mid-network, L = 18 and 30 late; tests/test_estimators.py). `ci` is
the same interval with each bound rounded up to its whole depth (nearest rank commutes with that map), so it covers
the whole depth of the transition more often (97-100% in the same simulations): rounding only widens. The verdict reads
`ci`, the interval in the unit users quote a depth in, which makes "identified" conservative, never lenient.

Identified (`identify`), a rule on the CI only, never on the point estimate: the CI [lo, hi] is identified when
  1. neither bound is None: in at least (1 - ci) / 2 of resamples there is a transition at all;
  2. 1 <= lo and hi <= L - 1: the transition is inside the network (depth 0 = decided at the embeddings, depth L = only
     the final layer; neither splits the depth into two phases); for a decision depth hi <= c - 1, where
     c = L - min_run + 1 is the deepest depth at which a decision can be observed (a median at c cannot be told from
     one beyond it);
  3. hi - lo <= max(1, L / 4): the CI localises it within a quarter of the network (a CI over half the depth says
     "somewhere in the middle", which is no location).
Otherwise the verdict is "not identified at this n", with the first failed condition as the reason.
"""
from __future__ import annotations

import numpy as np

from .bootstrap import _to_numpy, bootstrap_means
from .changepoint import half_rise
from .decision import _gold, decision_margin, predictions
from .decision_depth import decision_depths, default_min_run, km_fraction_decided, median_depth
from .transition import sustained_crossing, tp_ci_text

IDENTIFIED, NOT_IDENTIFIED = "identified", "not identified at this n"
WIDTH_FRAC = 0.25
NAMES = {"mean_dm_tp": "mean-DM TP", "decision_depth_pred": "decision depth (prediction)",
         "decision_depth_gold": "decision depth (gold)", "acc_changepoint": "accuracy change-point"}


def max_width(num_layers: int) -> float:
    return max(1.0, WIDTH_FRAC * num_layers)


def identify(ci, num_layers: int, last: int | None = None) -> tuple[str, str]:
    """(verdict, reason) from a depth CI [lo, hi] (None = the "no transition" tail); see the module docstring.
    `last`: the deepest depth the estimator can observe (L; for a decision depth the censoring depth L - min_run + 1).
    A bound there cannot be told from "later than we can see", so identified needs hi <= last - 1."""
    lo, hi = ci
    if lo is None and hi is None:
        return NOT_IDENTIFIED, "no transition in most resamples (CI [none, none])"
    if lo is None or hi is None:
        return NOT_IDENTIFIED, "CI reaches 'none' (no transition in some resamples)"
    if lo < 1:
        return NOT_IDENTIFIED, "CI reaches depth 0 (decided at the embeddings)"
    last = num_layers if last is None else last
    if hi > last - 1:
        return NOT_IDENTIFIED, (f"CI reaches the last depth {num_layers}" if last == num_layers else
                                f"CI reaches depth {last}, the last at which a decision can be observed")
    if hi - lo > max_width(num_layers):
        return NOT_IDENTIFIED, f"CI width {hi - lo} > L/4 = {max_width(num_layers):g}"
    return IDENTIFIED, f"CI inside 1..{num_layers - 1}, width {hi - lo} <= L/4"


def depth_ci(values, none: int, ci: float = 0.95) -> list:
    """Nearest-rank percentile CI of resampled depths [B] in which `none` (>= D) codes "no transition"."""
    alpha = (1.0 - ci) / 2.0
    v = np.asarray(values)
    lo, hi = (int(np.percentile(v, 100 * q, method="inverted_cdf")) for q in (alpha, 1 - alpha))
    return [None if lo >= none else lo, None if hi >= none else hi]


def resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] multiplicity of each question in each resample, from the very index draw `bootstrap_means` makes
    for this seed, so every estimator here and `transition_point_bootstrap` see the same resamples."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    flat = (idx + n * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def crossing_ci(values, ci: float = 0.95) -> list:
    """Nearest-rank percentile CI of resampled crossings [B] (inf = no transition, a bound there is None). Nearest
    rank commutes with the monotone map crossing -> whole depth, so it is consistent with `depth_ci`."""
    alpha = (1.0 - ci) / 2.0
    v = np.asarray(values, dtype=np.float64)
    b = [float(np.percentile(v, 100 * q, method="inverted_cdf")) for q in (alpha, 1 - alpha)]
    return [None if not np.isfinite(x) else round(x, 4) for x in b]


def _block(point, crossing, bpoint, bcross, none: int, ci: float, num_layers: int, last: int | None = None) -> dict:
    c = depth_ci(bpoint, none, ci)
    verdict, why = identify(c, num_layers, last)
    return {"point": None if point >= none else int(point),
            "crossing": None if not np.isfinite(crossing) else round(float(crossing), 4),
            "ci": c, "crossing_ci": crossing_ci(bcross, ci), "none_frac": float(np.mean(bpoint >= none)),
            "verdict": verdict, "why": why}


def _decided_curves(pred, target, min_run: int, w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction-decided curve [C] on the sample, on its resamples [B, C] (weights w), C = D - min_run + 1 depths, and
    which questions are decided [N]."""
    t, e = decision_depths(pred, target, min_run)
    length = pred.shape[1] - min_run + 1
    return km_fraction_decided(t, e, length), km_fraction_decided(t, e, length, w), e


def transition_estimators(scores, gold, n_options, *, margin: str = "logit", tau: float = 0.0, n_boot: int = 1000,
                          ci: float = 0.95, seed: int = 0, min_run: int | None = None) -> dict:
    """All estimators with CIs and verdicts -> JSON-ready dict (see the module docstring).

    scores [N, D, Kmax] with padded options beyond n_options[i] ignored, gold [N], n_options [N]; depth 0..L.
    Each estimator: point (whole depth, None = no transition), crossing (the same rule read between depths, see
    `transition.sustained_crossing`), ci and crossing_ci (None bound = the "no transition" tail), none_frac, verdict
    and why. The decision depths add the Kaplan-Meier curve (depths 0..last_depth) with its pointwise band.
    """
    s = _to_numpy(scores)
    n, d = s.shape[0], s.shape[1]
    if d < 3:
        raise ValueError(f"need depths 0..L with L >= 2, got D={d}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    L = d - 1
    g = _gold(gold, n_options, n)
    k = default_min_run(L) if min_run is None else int(min_run)
    pred = predictions(s, n_options)                                          # [N, D]
    w = resample_weights(n, n_boot, seed)                                     # [B, N], the draw bootstrap_means makes
    alpha = (1.0 - ci) / 2.0
    out = {"n_boot": n_boot, "ci": ci, "seed": seed, "num_layers": L, "min_run": k, "max_width": max_width(L)}

    # The paper's TP: the same resampled mean-DM curves as transition_point_bootstrap (so the same tp_ci).
    dm = decision_margin(s, g, n_options, margin)
    (p0,), (x0,) = sustained_crossing(dm.mean(0)[None], tau)
    pb, xb = sustained_crossing(bootstrap_means(dm, n_boot, seed), tau)
    out["mean_dm_tp"] = {**_block(p0, x0, pb, xb, d, ci, L), "tau": tau, "margin": margin}

    for rule, target in (("pred", pred[:, -1]), ("gold", g)):
        curve, boot, e = _decided_curves(pred, target, k, w)                # [C] (C = last_depth + 1), [B, C]
        p0, x0 = median_depth(curve)
        pb, xb = median_depth(boot)
        none = curve.size
        band = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
        out[f"decision_depth_{rule}"] = {
            **_block(d if p0 >= none else p0, x0, np.where(pb >= none, d, pb), xb, d, ci, L, last=none - 1),
            "decided_frac": float(e.mean()), "last_depth": int(none - 1),
            "curve": [round(float(x), 6) for x in curve], "curve_ci": [[round(float(x), 6) for x in b] for b in band]}

    correct = (pred == g[:, None]).astype(np.float64)
    (p0,), (x0,), (h0,), _ = half_rise(correct.mean(0)[None])
    pb, xb, hb, _ = half_rise(w @ correct / n)
    h_lo, h_hi = np.percentile(hb, [100 * alpha, 100 * (1 - alpha)])
    out["acc_changepoint"] = {**_block(p0, x0, pb, xb, d, ci, L), "height": float(h0),
                              "height_ci": [float(h_lo), float(h_hi)]}
    return out


def paired_depth_difference(scores_a, scores_b, gold, n_options, *, rule: str = "pred", n_boot: int = 1000,
                            ci: float = 0.95, seed: int = 0, min_run: int | None = None) -> dict:
    """Median decision depth of readout a minus readout b, read on the same questions: both medians are recomputed
    on the same question resamples (`resample_weights`), so the interval is that of the paired difference, not two
    separate intervals set side by side (which can overlap while the difference is clear, or fail to overlap by
    chance of the two draws).

    scores_a, scores_b [N, D, Kmax] (same questions, same depths), rule "pred" or "gold" as in
    `transition_estimators`. The difference is of the `crossing`s (the median read between depths). A resample in
    which one readout never has half its questions decided counts as +inf (a later than observable) or -inf; when
    neither has, as 0 (no evidence of an order). -> {"point", "ci"} (None = unbounded), rule, n_boot.
    """
    a, b = _to_numpy(scores_a), _to_numpy(scores_b)
    if a.shape != b.shape:
        raise ValueError(f"the two readouts must score the same questions and depths: {a.shape} vs {b.shape}")
    n, d = a.shape[:2]
    L = d - 1
    g = _gold(gold, n_options, n)
    k = default_min_run(L) if min_run is None else int(min_run)
    w = resample_weights(n, n_boot, seed)
    cross = []
    for s in (a, b):
        pred = predictions(s, n_options)
        curve, boot, _ = _decided_curves(pred, pred[:, -1] if rule == "pred" else g, k, w)
        cross.append((float(median_depth(curve)[1]), np.asarray(median_depth(boot)[1], dtype=np.float64)))

    def diff(x, y):
        with np.errstate(invalid="ignore"):
            z = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
        return np.where(np.isnan(z), 0.0, z)                  # inf - inf: neither decided, no order

    point = float(diff(cross[0][0], cross[1][0]))
    return {"point": round(point, 4) if np.isfinite(point) else None,
            "ci": crossing_ci(diff(cross[0][1], cross[1][1]), ci), "rule": rule, "n_boot": n_boot, "min_run": k}


def _num(x) -> str:
    return "none" if x is None else f"{x:g}"


def estimators_text(est: dict) -> str:
    """One line per estimator for the CLI: point (crossing), CI (crossing CI), verdict and why."""
    lines = []
    for key, name in NAMES.items():
        e = est.get(key)
        if e is None:
            continue
        extra = ""
        if key.startswith("decision_depth"):
            extra = f"; {e['decided_frac']:.0%} of questions decided by depth {e['last_depth']}"
        lines.append(f"  {name}: {_num(e['point'])} (crossing {_num(e['crossing'])}), {est['ci']:.0%} CI "
                     f"{tp_ci_text(e['ci'])} ([{', '.join(_num(x) for x in e['crossing_ci'])}]) -> {e['verdict']} "
                     f"({e['why']}){extra}")
    return "\n".join(lines)


SHORT = {"mean_dm_tp": "TP", "decision_depth_pred": "DDpred", "decision_depth_gold": "DDgold",
         "acc_changepoint": "CP"}


def estimator_cell(e: dict | None, marks=(" identified", ""), empty: str = "-") -> str:
    """One estimator in a table cell: "15 [14, 16] identified" / "none [13, none]"; `empty` when not computed.
    marks: the suffixes of an identified and an unidentified estimator (the HTML report uses ✓ / ✗)."""
    if not e:
        return empty
    return f"{_num(e['point'])} {tp_ci_text(e['ci'])}" + marks[e["verdict"] != IDENTIFIED]


def estimators_brief(est: dict | None) -> str:
    """Every estimator on one line (pruning steps): "TP none [13, none]; DDpred 15 [14, 16] identified; ..."."""
    if not est:
        return "estimators: not computed"
    return "; ".join(f"{SHORT[k]} {estimator_cell(est.get(k))}" for k in SHORT if k in est)


def phase_depth(est: dict | None) -> dict | None:
    """The depth that splits the Silent from the Decisive phase, for labels (plan, restore, ablation): the paper's
    mean-DM TP where it is identified, else the prediction-rule decision depth's point, identified or not (the
    verdict goes with it, so every label built on an unidentified depth can say so). None: neither has a point.
    -> {"depth", "estimator", "verdict", "ci", "source"} with source e.g. "decision_depth_pred (not identified at
    this n)"."""
    for key in ("mean_dm_tp", "decision_depth_pred"):
        e = (est or {}).get(key) or {}
        if e.get("point") is not None and (e.get("verdict") == IDENTIFIED or key == "decision_depth_pred"):
            return {"depth": int(e["point"]), "estimator": key, "verdict": e.get("verdict"), "ci": e.get("ci"),
                    "source": f"{key} ({e.get('verdict')})"}
    return None
