"""Figures of the analyses. Every function takes the JSON-ready result dict, so figures can be redrawn from files.
Each is written as PNG and SVG, with integer depth ticks and the legend outside the axes."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..plots import int_ticks, legend_outside, save  # noqa: E402


def _save(fig, path) -> Path:
    """PNG + SVG beside it (prunelens.plots.save)."""
    return save(fig, path, dpi=100)


def _arr(x):
    return np.array([[np.nan if v is None else v for v in r] for r in x], float) if isinstance(x, list) else \
        np.asarray(x, float)


def cka_best_match(res: dict, path) -> Path:
    """Figure 3: each pruned depth's best-matching dense depth, against the identity diagonal."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    n = len(res["kept_depths"])
    L = res["num_layers"]
    ax.plot([0, n - 1], [0, n - 1], "--", color="0.6", label="identity diagonal")
    ax.plot(range(n), res["kept_depths"], ":", color="0.3", label="depth of the kept layer")
    for sig, c in (("hidden", "C1"), ("decision", "C0")):
        bm = [np.nan if b is None else b for b in res["signals"][sig]["best_match"]]
        ax.plot(range(n), bm, "o-", color=c, label=f"{sig} (token mean)" if sig == "hidden" else "decision token")
    ax.set_xlabel("pruned model depth")
    ax.set_ylabel("best-matching dense depth (max CKA)")
    ax.set_ylim(-0.5, L + 0.5)
    int_ticks(ax)
    int_ticks(ax, axis="y")
    legend_outside(ax)
    ax.set_title(f"CKA best match · {res.get('task', '')} · removed {len(res['removed'])}/{L}", fontsize=9)
    return _save(fig, path)


def cka_heatmap(res: dict, sig: str, path) -> Path:
    """Figures 10-11: the full CKA matrix pruned depth x dense depth."""
    C = _arr(res["signals"][sig]["matrix"])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    im = ax.imshow(C, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="magma")
    ax.set_xlabel("dense depth")
    ax.set_ylabel("pruned depth")
    int_ticks(ax)
    int_ticks(ax, axis="y")
    fig.colorbar(im, ax=ax, label=f"{'debiased ' if res.get('debiased') else ''}linear CKA")
    ax.set_title(f"CKA ({sig}) · {res.get('task', '')}", fontsize=9)
    return _save(fig, path)


def _phase(ax, tp, horizontal=True):
    if tp is None:
        return
    ax.axvline(tp - 0.5, color="w" if not horizontal else "C3", ls="--")


def noise_heatmaps(res: dict, path) -> Path:
    """Figures 6/18: mean final DM and accuracy over seeds, alpha x noised depth, Transition Point marked."""
    tp = res["clean"].get("transition_point")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, key, lab in ((axes[0], "dm_mean", "final DM"), (axes[1], "acc_mean", "accuracy")):
        M = _arr(res[key])
        im = ax.imshow(M, aspect="auto", origin="lower", cmap="viridis")
        ax.set_xticks(range(len(res["depths"])), res["depths"], fontsize=7)
        ax.set_yticks(range(len(res["alphas"])), [f"α={a:g}" for a in res["alphas"]])
        if tp is not None and tp in res["depths"]:
            x = res["depths"].index(tp) - 0.5
            ax.axvline(x, color="w", ls="--")
            ax.text(x - 0.2, len(res["alphas"]) - 0.6, "Silent ←", color="w", ha="right", fontsize=7)
            ax.text(x + 0.2, len(res["alphas"]) - 0.6, "→ Decisive", color="w", ha="left", fontsize=7)
        ax.set_xlabel("noised depth l (noise added to h_l)")
        fig.colorbar(im, ax=ax, label=f"{lab} (mean over {len(res['seeds'])} seeds)")
    axes[0].set_title(f"noise sensitivity · {res.get('task', '')} · clean DM={res['clean']['dm_final']:.2f}", fontsize=9)
    return _save(fig, path)


def noise_lines(res: dict, path) -> Path:
    """Final DM vs noised depth, mean ± std over seeds, one line per alpha, Silent phase shaded."""
    tp = res["clean"].get("transition_point")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    if tp is not None:
        ax.axvspan(min(res["depths"]) - 0.5, tp - 0.5, color="0.88", label="Silent Phase")
    for ai, a in enumerate(res["alphas"]):
        ax.errorbar(res["depths"], _arr(res["dm_mean"])[ai], yerr=_arr(res["dm_std"])[ai], marker="o", ms=3,
                    capsize=2, label=f"α={a:g}")
    ax.axhline(res["clean"]["dm_final"], color="k", ls=":", label="clean")
    ax.set_xlabel("noised depth")
    ax.set_ylabel("final DM")
    int_ticks(ax)
    legend_outside(ax)
    ax.set_title(f"final DM under noise · {res.get('task', '')} · mean ± std over seeds "
                 f"{', '.join(map(str, res['seeds']))}", fontsize=9)
    return _save(fig, path)


def ablation_bars(res: dict, path) -> Path:
    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(rows)), 3.5))
    x = np.arange(len(rows))
    for i, t in enumerate(res["tasks"]):
        ax.plot(x, [r["tasks"][t]["acc"] for r in rows], "o", alpha=0.6, label=t)
    ax.bar(x, [r["avg_acc"] for r in rows], color="0.8", label="average")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=45, fontsize=7)
    ax.set_ylabel("accuracy")
    ax.set_title(f"transition ablation (TP={res['tp']}, layers removed by checkpoint id)", fontsize=9)
    legend_outside(ax)
    return _save(fig, path)


def correlation_scatter(res: dict, path) -> Path:
    """Figure 8: critical ratio vs relative Transition Point depth, with the least-squares fit."""
    fig, ax = plt.subplots(figsize=(5, 4))
    used = set(res.get("used_sources") or [])      # the points r rests on (older files: every usable point)
    pts = [p for p in res["points"] if p["tp_relative"] is not None and p["critical_ratio"] is not None
           and not p.get("at_chance") and (p.get("source", "") in used if "used_sources" in res else True)]
    ax.scatter([p["tp_relative"] for p in pts], [p["critical_ratio"] for p in pts])
    for p in pts:   # the TP's 95% CI as a horizontal bar; an open end (no TP in the tail) runs to the right edge
        ci = p.get("tp_ci_relative")
        if ci and ci[0] is not None:
            ax.plot([ci[0], 1.0 if ci[1] is None else ci[1]], [p["critical_ratio"]] * 2, color="C0", alpha=0.4,
                    linestyle="-" if ci[1] is not None else ":")
    for p in pts:
        ax.annotate(f"{Path(str(p['model'])).name}/{p['task']}", (p["tp_relative"], p["critical_ratio"]), fontsize=6)
    if res.get("fit"):
        xs = np.linspace(0, 1, 10)
        ax.plot(xs, res["fit"]["slope"] * xs + res["fit"]["intercept"], "--", color="C3")
    r = res.get("r")
    ax.set_title(f"r = {r:.2f}, p = {res['p']:.3g}, n = {res['n']}" if r is not None else f"n = {res['n']}: r undefined",
                 fontsize=9)
    ax.set_xlabel("Transition Point / L (bars: its 95% CI; dotted: reaches 'no TP')")
    ax.set_ylabel("critical pruning ratio")
    return _save(fig, path)


def correlation_by_estimator(res: dict, path) -> Path:
    """Figure 8 with each transition estimator in place of the TP: one panel per estimator, critical ratio against
    its depth / L, its 95% CI as a bar (dotted: reaches "none"), filled where the estimator is identified."""
    from ..metrics.estimators import NAMES
    keys = [k for k in NAMES if k in (res.get("by_estimator") or {})]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.3), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], keys):
        b = res["by_estimator"][k]
        used = set(b.get("sources") or [])           # exactly the points its r rests on (one per model and task)
        pts = [p for p in res["points"] if p["critical_ratio"] is not None and not p.get("at_chance")
               and ((p.get("estimators") or {}).get(k) or {}).get("relative") is not None
               and (p.get("source", "") in used if "sources" in b else True)]
        for p in pts:
            e = p["estimators"][k]
            ci = e.get("ci_relative")
            if ci and ci[0] is not None:
                ax.plot([ci[0], 1.0 if ci[1] is None else ci[1]], [p["critical_ratio"]] * 2, color="C0", alpha=0.4,
                        linestyle="-" if ci[1] is not None else ":")
            ax.plot([e["relative"]], [p["critical_ratio"]], "o", color="C0",
                    mfc="C0" if e.get("verdict") == "identified" else "none")
            ax.annotate(f"{Path(str(p['model'])).name}/{p['task']}", (e["relative"], p["critical_ratio"]), fontsize=5)
        r = b.get("r")
        ci = b.get("r_ci")
        ax.set_title(f"{NAMES[k]}\n" + (f"r = {r:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
                                         if r is not None else "r undefined") + f", n = {b['n']}", fontsize=8)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("depth / L (filled: identified)", fontsize=8)
    axes[0][0].set_ylabel("critical pruning ratio")
    return _save(fig, path)


def recovery_plot(res: dict, path) -> Path:
    """Figure 7: final DM and accuracy before/after fine-tuning at each pruning ratio."""
    runs = res["runs"]
    x = [r["ratio"] for r in runs]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, k, lab in ((axes[0], "dm_final", "final DM"), (axes[1], "acc", "accuracy")):
        ax.plot(x, [r["before"][k] for r in runs], "o-", label="pruned")
        ax.plot(x, [r["after"][k] for r in runs], "s-", label=f"after {res['mode']} ({res['steps']} steps)")
        ax.set_xlabel("pruning ratio")
        ax.set_ylabel(lab)
    legend_outside(axes[1], *axes[0].get_legend_handles_labels())
    return _save(fig, path)


def methods_plot(methods: dict, dense_acc, path, title="") -> Path:
    """Accuracy vs pruning ratio for every method (random: mean ± std over seeds)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, m in methods.items():
        st = sorted(m["steps"], key=lambda s: s["ratio"])
        y = [s["acc"][-1] if isinstance(s["acc"], list) else s["acc"] for s in st]
        ax.errorbar([s["ratio"] for s in st], y, yerr=[s.get("acc_std", 0) for s in st], marker="o", ms=3,
                    capsize=2, label=name)
    if dense_acc is not None:
        ax.axhline(dense_acc, color="k", ls=":", label="dense")
    ax.set_xlabel("pruning ratio")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    legend_outside(ax)
    return _save(fig, path)
