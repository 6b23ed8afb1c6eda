"""The plan figure: predicted accuracy against the ratio removed, with its band, chance, the halfway line, the
recommended set and (after --verify) the measured accuracy."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..plots import legend_outside, save  # noqa: E402


def plan_figure(p: dict, path) -> Path:
    L = p["num_layers"]
    c = p["curve"]
    x = np.array(c["k"]) / L
    ci = np.array(c["acc_ci"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, c["acc"], "o-", ms=3, color="C0", label="predicted accuracy (additive single-layer removals)")
    ax.fill_between(x, ci[:, 0], ci[:, 1], color="C0", alpha=0.15, lw=0, label="95% band")
    ax.axhline(p["chance"], color="0.5", ls=":", label="chance")
    half = p["chance"] + p["gamma"] * (p["dense"]["acc"] - p["chance"])
    ax.axhline(half, color="C3", ls="--", lw=1, label="halfway to chance (critical)")
    r = p["recommended"]
    ax.axvline(r["ratio"], color="C2", lw=1, label=f"recommended: {r['k']} layers")
    if p.get("verify"):
        ax.plot([r["ratio"]], [p["verify"]["acc"]], "s", color="C1", ms=7, label="measured (--verify)")
    ax.set_xlabel("ratio of layers removed (least harmful first)")
    ax.set_ylabel("accuracy")
    legend_outside(ax)
    ax.set_title(f"Plan · {Path(str(p.get('model', ''))).name} · {p.get('task', '')} · {p.get('format', '')} · "
                 f"score {p.get('score_kind', '')} · n={p['n_samples']}", fontsize=8)
    return save(fig, path, dpi=100)


def evaluation_figure(e: dict, path) -> Path:
    """Predicted against true critical ratio, one marker per predictor and (model, task) point. Points whose truth is
    censored (the trajectory never fell halfway) have no true ratio and are left out; the title says how many. The
    diagonal is a perfect prediction."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    marks = {"plan": ("o", "C0"), "plan_loo": ("s", "C1"), "paper_rule": ("^", "C2"), "last_25pct": ("x", "C3")}
    for name, (m, col) in marks.items():
        pts = [(r["truth"], r[name]) for r in e["points"] if r.get(name) is not None and r["truth"] is not None]
        if not pts:
            continue
        s = e["scores"].get(name, {})
        lab = f"{name}: MAE {s['mae']:.3f} (n={s['n']})" if s.get("mae") is not None else name
        for j, (t, y) in enumerate(pts):
            ax.plot([t], [y], m, color=col, ms=6, label=lab if j == 0 else None)
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("true critical ratio (trajectory)")
    ax.set_ylabel("predicted critical ratio")
    run = sum(r["truth"] is None and bool(r.get("running")) for r in e["points"])
    cens = sum(r["truth"] is None for r in e["points"]) - run
    ax.set_title(f"plan-eval, truth: {e['truth_method']}, {len(e['points'])} points"
                 + (f" ({cens} censored, not drawn)" if cens else "")
                 + (f" ({run} still running, not drawn)" if run else ""), fontsize=9)
    legend_outside(ax)
    return save(fig, path, dpi=100)
