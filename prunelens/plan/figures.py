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
