"""The readout comparison figure: accuracy by depth of every readout with its CI, and each one's decision depth."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..plots import int_ticks, legend_outside, save  # noqa: E402

_C = {"logit_lens": "C0", "option_lens": "C9", "tuned_lens": "C1", "probe": "C2", "probe_shuffled": "0.5"}


def readout_figure(res: dict, path) -> Path:
    """Accuracy (left) and mean Decision Margin (right) by depth of every readout, with 95% CIs. The DMs are each in
    their readout's own units (log-prob margins of the lenses, logit margins of the probes): compare where each
    crosses 0, not their heights."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in res["readouts"].items():
        acc, ci = np.array(r["acc"]), np.array(r["acc_ci"])
        x = np.arange(len(acc))
        est = (r.get("estimators") or {}).get("decision_depth_pred") or {}
        mark = "" if est.get("point") is None else f"; decision depth {est['point']} ({est.get('verdict', '')})"
        ls = ":" if name == "probe_shuffled" else "-"
        ax.plot(x, acc, marker="o", ms=3, color=_C.get(name, "k"), label=name + mark, ls=ls)
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=_C.get(name, "k"), alpha=0.12, lw=0)
        if r.get("dm_mean") is not None:
            dm = np.array(r["dm_mean"], dtype=float)
            ax2.plot(np.arange(len(dm)), dm, marker="o", ms=3, color=_C.get(name, "k"), ls=ls)
            if r.get("dm_ci") is not None:
                dci = np.array(r["dm_ci"], dtype=float)
                ax2.fill_between(np.arange(len(dm)), dci[:, 0], dci[:, 1], color=_C.get(name, "k"), alpha=0.12, lw=0)
    ax.set_xlabel("depth")
    ax.set_ylabel("accuracy (95% CI)")
    ax2.axhline(0, color="k", lw=0.6)
    ax2.set_yscale("symlog", linthresh=1.0)        # early depths' margins are tens of units; the crossing is near 0
    ax2.set_xlabel("depth")
    ax2.set_ylabel("mean DM, 95% CI (symlog; own units)")
    for a in (ax, ax2):
        int_ticks(a)
    legend_outside(ax2, *ax.get_legend_handles_labels())
    fig.suptitle(f"Readouts · {Path(str(res.get('model', ''))).name} · {res.get('task', '')} · {res['format']} · "
                 f"score {res['score_kind']} · train {res['n_train']} / eval {res['n_eval']}", fontsize=8)
    return save(fig, path, dpi=100)
