"""Trajectory figures and tables from trajectory.json alone: accuracy / final DM vs ratio (several methods on one
chart, random seeds as mean with a band), DM-by-depth for chosen ratios with the transition marked, OF/KL heatmaps
across steps, KL and (when stored) OF by depth for pruned states, and the removed-layer table (CSV + Markdown).
Every figure is PNG + SVG (`prunelens.plots.save`)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..plots import (depth_states, dm_depth_figure, kl_depth_figure,  # noqa: E402,F401 (re-exported)
                      legend_outside, of_depth_figure, plot_dm_depth, plot_kl_depth, plot_of_depth,
                      plot_of_kl, save)
from ..metrics.estimators import SHORT, estimator_cell  # noqa: E402
from ..results import atomic_write_text, read_json  # noqa: E402


def label(t: dict) -> str:
    p = t["params"]
    name = p["method"] + (" +SKIP" if p.get("skip") else "") + (" +heur" if p.get("heuristic") else "")
    return name


def _curve(t, key):
    pts = [(0.0, t["dense"][key])] + [(s["ratio"], s[key]) for s in t["steps"]]
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def plot_vs_ratio(trajs: list[dict], path: Path) -> Path:
    """Accuracy and final DM vs pruning ratio; trajectories with the same label (random seeds) are averaged."""
    groups: dict[str, list] = {}
    for t in trajs:
        groups.setdefault(label(t), []).append(t)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, ylab in ((axes[0], "acc", "accuracy"), (axes[1], "dm_final", "final Decision Margin")):
        for name, ts in groups.items():
            curves = [_curve(t, key) for t in ts]
            n = min(len(c[0]) for c in curves)
            x, ys = curves[0][0][:n], np.stack([c[1][:n] for c in curves])
            seeds = [str(t["params"].get("seed_prune")) for t in ts if t["params"].get("seed_prune") is not None]
            line, = ax.plot(x, ys.mean(0), "o-", ms=3, label=name + (
                f" (mean of {len(ts)} seeds: {', '.join(seeds)}; band min-max)" if len(ts) > 1 else
                f" (seed {seeds[0]})" if seeds else ""))
            if len(ts) > 1:
                ax.fill_between(x, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
            elif key == "acc":
                ci = np.array([ts[0]["dense"]["acc_ci"]] + [s["acc_ci"] for s in ts[0]["steps"]])[:n]
                ax.fill_between(x, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.15)
        if key == "acc":
            chance = float(np.mean([1 / len(of) for of in [trajs[0]["dense"]["option_frequency"]]]))
            ax.axhline(chance, color="0.5", ls=":", label="chance (max options)")
        else:
            ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("pruning ratio (layers removed / L)")
        ax.set_ylabel(ylab)
    legend_outside(axes[1], *axes[0].get_legend_handles_labels())
    t0 = trajs[0]
    fig.suptitle(f"{Path(str(t0['model'])).name} · {t0['task']} ({t0['params']['format']}, score "
                 f"{t0['params'].get('score', 'raw')}, n={t0['n_samples']})", fontsize=10)
    return save(fig, path, dpi=120)


def removed_table(trajs: list[dict], out: Path, stem: str = "removed_layers") -> list[Path]:
    """One row per (trajectory, step): the paper's Tables 2-4 format (original ids, in removal order)."""
    rows = [("method", "seed", "n_removed", "ratio", "removed (original ids, in order)", "acc", "acc_ci",
             "dm_final", "transition_point", *(f"{name} [95% CI]" for name in SHORT.values()))]
    for t in trajs:
        for s in t["steps"]:
            est = s.get("estimators") or {}
            rows.append((label(t), str(t["params"].get("seed_prune", "")), str(s["n_removed"]), f"{s['ratio']:.3f}",
                         " ".join(map(str, s["removed"])), f"{s['acc']:.3f}",
                         f"[{s['acc_ci'][0]:.3f}, {s['acc_ci'][1]:.3f}]", f"{s['dm_final']:.3f}",
                         "none" if s["transition_point"] is None else str(s["transition_point"]),
                         *(estimator_cell(est.get(k)) for k in SHORT)))
    csv = "\n".join(",".join(f'"{c}"' if ("," in c or " " in c) else c for c in r) for r in rows) + "\n"
    md = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n" + \
        "".join("| " + " | ".join(r) + " |\n" for r in rows[1:])
    return [atomic_write_text(out / f"{stem}.csv", csv), atomic_write_text(out / f"{stem}.md", md)]


def plot_trajectory(t: dict, out: Path) -> list[Path]:
    out = Path(out)
    paths = [plot_vs_ratio([t], out / "acc_dm_vs_ratio.png"), plot_dm_depth(t, out / "dm_by_depth.png"),
             plot_of_kl(t, out / "of_kl.png")]
    if depth_states(t, key="kl_by_depth"):
        paths.append(plot_kl_depth(t, out / "kl_by_depth.png"))
    if depth_states(t, key="of_by_depth"):
        paths.append(plot_of_depth(t, out / "of_by_depth.png"))
    return paths + removed_table([t], out)
