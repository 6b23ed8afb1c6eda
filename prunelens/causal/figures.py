"""Figures of the causal tests, drawn from their JSON results (PNG + SVG, integer depth ticks, legends off the
data)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..plots import int_ticks, legend_outside, save  # noqa: E402

_STYLE = {"restore_all": ("C0", "-"), "restore_decision": ("C1", "-"), "norm_all": ("C2", "--"),
          "norm_decision": ("C4", "--"), "other_decision": ("0.5", ":"), "mean_decision": ("C7", ":")}


def _caption(res: dict) -> str:
    return (f"{Path(str(res.get('model', ''))).name} · {res.get('task', '')} · {res.get('format', '')} · "
            f"score {res.get('score_kind', '')} · n={res.get('n_samples', '')}")


def restore_figure(res: dict, path) -> Path:
    """Recovered share of the lost DM and accuracy change against the pruned model, by pruned depth, per mode."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for m, rows in res["curves"].items():
        c, ls = _STYLE.get(m, ("k", "-"))
        x = [r["pruned_depth"] for r in rows]
        for ax, key, ci in ((axes[0], "share_dm", "share_dm_ci"), (axes[1], "d_acc", "d_acc_ci")):
            y = np.array([np.nan if r[key] is None else r[key] for r in rows], float)
            lo = np.array([np.nan if r[ci][0] is None else r[ci][0] for r in rows], float)
            hi = np.array([np.nan if r[ci][1] is None else r[ci][1] for r in rows], float)
            # restore_all is one model per run of kept layers (constant from a cut to the next): steps, exact on a
            # reduced grid too; the other modes move within a run and are joined by lines
            step = "post" if m == "restore_all" else None
            ax.plot(x, y, ls, color=c, marker="o", ms=3, label=m, drawstyle="steps-post" if step else "default")
            ax.fill_between(x, lo, hi, color=c, alpha=0.12, lw=0, step=step)
    rows = next(iter(res["curves"].values()))
    first_dec = next((r["pruned_depth"] for r in rows if r.get("phase") == "decisive"), None)
    gap = res["gap"]["acc"]
    for ax in axes:
        ax.axhline(0, color="0.3", lw=0.8)
        if first_dec is not None:
            ax.axvline(first_dec - 0.5, color="C3", lw=1, ls="--", label=f"Silent | Decisive (dense tp={res['tp']})")
        ax.set_xlabel("pruned depth (its dense depth below)")
        ax.set_xticks([r["pruned_depth"] for r in rows])
        ax.set_xticklabels([f"{r['pruned_depth']}\n{r['dense_depth']}" for r in rows], fontsize=7)
    axes[0].axhline(1, color="0.3", lw=0.8, ls=":")
    axes[0].set_ylim(-0.5, 1.5)
    axes[0].set_ylabel("recovered share of the lost DM")
    axes[1].axhline(gap, color="0.3", lw=0.8, ls=":")
    axes[1].set_ylabel(f"accuracy change vs pruned (dotted: dense, +{gap:.2f})")
    legend_outside(axes[1])
    fig.suptitle(f"Restore-patching · removed {res['removed']} of {res['num_layers']} · {_caption(res)}", fontsize=9)
    return save(fig, path, dpi=100)


def skip_figure(res: dict, path) -> Path:
    """Relative change of every later layer's update when one layer is skipped, and the decision change."""
    rel = np.array([[np.nan if v is None else v for v in r] for r in res["rel_change"]], float)
    has_dec = bool(res.get("decision"))
    fig, axes = plt.subplots(1, 2 if has_dec else 1, figsize=(11 if has_dec else 6, 4.2), squeeze=False)
    ax = axes[0, 0]
    im = ax.imshow(rel, origin="lower", aspect="auto", cmap="viridis", vmin=0,
                   vmax=max(1e-9, float(np.nanpercentile(rel, 99))) if np.isfinite(rel).any() else 1)
    ax.set_yticks(range(len(res["skipped"])))
    ax.set_yticklabels(res["skipped"], fontsize=7)
    ax.set_xlabel("later layer m")
    ax.set_ylabel("skipped layer")
    int_ticks(ax)
    fig.colorbar(im, ax=ax, label="relative change of layer m's update")
    if has_dec:
        ax = axes[0, 1]
        d = res["decision"]
        x = [r["layer"] for r in d]
        for key, c, off in (("d_acc", "C0", -0.15), ("d_dm", "C1", 0.15)):
            y = np.array([r[key] for r in d])
            ci = np.array([r[key + "_ci"] for r in d])
            ax.errorbar(np.array(x) + off, y, yerr=[y - ci[:, 0], ci[:, 1] - y], fmt="o", color=c, ms=3,
                        label="accuracy" if key == "d_acc" else "DM")
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xlabel("skipped layer")
        ax.set_ylabel("change against dense (95% CI)")
        int_ticks(ax)
        legend_outside(ax)
    fig.suptitle(f"Skip effects · {_caption(res)}", fontsize=9)
    return save(fig, path, dpi=100)
