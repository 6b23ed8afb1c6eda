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
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, r in res["readouts"].items():
        acc, ci = np.array(r["acc"]), np.array(r["acc_ci"])
        x = np.arange(len(acc))
        est = (r.get("estimators") or {}).get("decision_depth_pred") or {}
        mark = "" if est.get("point") is None else f"; decision depth {est['point']} ({est.get('verdict', '')})"
        ax.plot(x, acc, marker="o", ms=3, color=_C.get(name, "k"), label=name + mark,
                ls=":" if name == "probe_shuffled" else "-")
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=_C.get(name, "k"), alpha=0.12, lw=0)
    ax.set_xlabel("depth")
    ax.set_ylabel("accuracy (95% CI)")
    int_ticks(ax)
    legend_outside(ax)
    ax.set_title(f"Readouts · {Path(str(res.get('model', ''))).name} · {res.get('task', '')} · {res['format']} · "
                 f"score {res['score_kind']} · train {res['n_train']} / eval {res['n_eval']}", fontsize=8)
    return save(fig, path, dpi=100)
