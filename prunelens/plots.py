"""Figures of the decision lens (the paper's Figures 1, 4, 5). Every function takes the JSON result, so plots can
be redrawn from a finished run without the model. Every figure is written as PNG and SVG (`save`); depth axes have
integer ticks, legends sit outside the axes, and the TP's 95% CI is drawn wherever the TP is."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from matplotlib.ticker import MaxNLocator  # noqa: E402

from .metrics.transition import tp_ci_text  # noqa: E402
from .tasks.base import LETTERS  # noqa: E402

SYMLOG_ABOVE = 20.0        # |mean DM| beyond which a DM axis is symlog (the same rule for dense and pruned plots)


# ---- shared figure conventions (also used by prune/plots.py and analyses/figures.py) -------------------------------
def save(fig, path, dpi: int = 110) -> Path:
    """Write `fig` as PNG at `path` and as SVG beside it (same stem: vector output), with the bounding box fitted
    so legends placed outside the axes are kept; closes the figure. Returns the PNG path."""
    path = Path(path)
    if fig.get_layout_engine() is None:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
    # legends outside the axes are kept out of the layout (the axes keep their size) and added to the saved box
    extra = fig.get_default_bbox_extra_artists() + [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    kw = {"bbox_inches": "tight", "pad_inches": 0.06, "bbox_extra_artists": extra}
    fig.savefig(path, dpi=dpi, **kw)
    fig.savefig(path.with_suffix(".svg"), metadata={"Date": None}, **kw)
    plt.close(fig)
    return path


def int_ticks(*axes, axis: str = "x") -> None:
    """Depths are integers: ticks only at whole numbers."""
    for ax in axes:
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def legend_outside(ax, handles=None, labels=None, *, pad: float = 0.02, fontsize: float = 7, **kw):
    """The legend to the right of the axes, off the data (`pad`: extra room, e.g. for a twin axis's labels)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    leg = ax.legend(handles, labels, fontsize=fontsize, loc="upper left", bbox_to_anchor=(1 + pad, 1.0),
                    borderaxespad=0.0, frameon=False, **kw)
    leg.set_in_layout(False)          # the axes keep their size; `save` widens the saved image to include it
    return leg


def dm_scale(ax, values) -> str:
    """Early-depth lens margins can be hundreds of nats while the crossing happens within a few: symlog shows both.
    One rule for every DM plot (dense and pruned): symlog when some |mean DM| exceeds SYMLOG_ABOVE."""
    v = np.abs(np.asarray([x for x in values if x is not None], float))
    if v.size and np.nanmax(v) > SYMLOG_ABOVE:
        ax.set_yscale("symlog", linthresh=1.0)
        return "symlog"
    return "linear"


def tp_ci_label(ci, none_frac=None) -> str:
    """Legend text of a TP's 95% CI; a None bound is the "no TP" tail and is said so."""
    txt = f"TP 95% CI {tp_ci_text(ci)}"
    if ci[1] is None:
        share = f"no TP in {none_frac:.0%} of resamples" if none_frac else "reaches 'no TP'"
        txt += f": open end, drawn to the last depth ({share})" if ci[0] is not None else f": {share}, nothing to shade"
    return txt


def draw_tp_ci(ax, ci, last_depth: int, none_frac=None, color: str = "C3"):
    """The TP's question-bootstrap 95% CI as a shaded span over depths lo..hi. A None upper bound (some resamples
    have no TP) is drawn hatched to the last depth and the right edge, an open end, and the legend says so; a
    [none, none] CI has nothing to shade and is a legend entry only. The artist has gid "tp_ci" (an SVG group
    id="tp_ci"); returns it, or None without a CI."""
    if not ci or len(ci) != 2:
        return None
    lo, hi = ci
    label = tp_ci_label(ci, none_frac)
    if lo is None:
        art = ax.plot([], [], " ", label=label)[0]
    else:
        right = last_depth + 0.5 if hi is None else hi + 0.2
        art = ax.axvspan(lo - 0.2, right, facecolor=color, edgecolor=color, alpha=0.18, lw=0, zorder=0,
                         hatch="///" if hi is None else None, label=label)
    art.set_gid("tp_ci")
    return art


def _title(res: dict) -> str:
    return (f"{Path(str(res['model'])).name} · {res['task']} ({res['format']}, score {res.get('score', 'raw')}, "
            f"n={res['n_samples']})")


def _last_depth(res: dict) -> int:
    return int(res["depths"][-1]["depth"]) if res.get("depths") else int(res.get("num_layers") or 0)


def _mark_transition(ax, res: dict) -> None:
    """Silent phase shaded, TP dashed, the TP's 95% CI as a red span; no TP: said in the legend, not on the data."""
    tp = res.get("transition_point")
    if tp is None:
        ax.plot([], [], " ", label="no Transition Point (Silent throughout)")
    else:
        ax.axvspan(-0.5, tp - 0.5, color="0.88", zorder=0, label="Silent Phase")
        ax.axvline(tp, color="C3", ls="--", label=f"Transition Point = {tp}")
    draw_tp_ci(ax, res.get("tp_ci"), _last_depth(res), res.get("tp_none_frac"))


def dm_figure(res: dict):
    d = res["depths"]
    x = [r["depth"] for r in d]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    _mark_transition(ax, res)
    ax.plot(x, [r["dm_mean"] for r in d], "o-", color="C0", label="DM mean")
    ax.fill_between(x, [r["dm_ci"][0] for r in d], [r["dm_ci"][1] for r in d], color="C0", alpha=0.25,
                    label="DM mean 95% bootstrap CI")
    ax.plot(x, [r["dm_median"] for r in d], ":", color="C0", label="DM median")
    ax.axhline(0, color="k", lw=0.8)
    scale = dm_scale(ax, [r["dm_mean"] for r in d])
    ax.set_xlim(-0.5, x[-1] + 0.5)
    int_ticks(ax)
    ax.set_xlabel("depth (0 = embeddings, l = after layer l-1)")
    ax.set_ylabel(f"Decision Margin ({res.get('margin', 'logit')}, {res.get('score', 'raw')}"
                  f"{', symlog' if scale == 'symlog' else ''})")
    ax2 = ax.twinx()
    ax2.plot(x, [r["acc"] for r in d], "s-", color="C2", ms=3, alpha=0.7, label="accuracy (right axis)")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("accuracy", color="C2")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    legend_outside(ax, h1 + h2, l1 + l2, pad=0.12)
    ax.set_title(_title(res), fontsize=9)
    return fig


def plot_dm(res: dict, path: Path) -> Path:
    return save(dm_figure(res), path)


def label_shares(res: dict, run_dir=None) -> list[float] | None:
    """Gold-label share of each option position: the result's `label_distribution`, else from the run's
    samples.csv (one gold per question); None when neither is there."""
    if res.get("label_distribution") is not None:
        return [float(v) for v in res["label_distribution"]]
    csv = Path(run_dir) / "samples.csv" if run_dir else None
    if csv is None or not csv.is_file():
        return None
    try:
        import pandas as pd
        g = pd.read_csv(csv, usecols=["sample_id", "gold"]).drop_duplicates("sample_id")["gold"].to_numpy(int)
    except (ValueError, KeyError, OSError):
        return None
    K = len(res["depths"][0]["option_frequency"])
    return (np.bincount(g[(g >= 0) & (g < K)], minlength=K)[:K] / max(len(g), 1)).tolist()


def of_heatmap_axes(fig, ax, axl, of, labels, title: str, tp=None, xlabel: str = "depth"):
    """OF [D, K] as a heatmap scaled to its data (0..max of OF and label shares), and beside it one column with the
    gold-label shares on the same colour scale (what OF should approach)."""
    K = of.shape[1]
    lab = None if labels is None else np.asarray(labels, float)[:K]
    vmax = float(max(np.nanmax(of), 0 if lab is None else np.nanmax(lab))) or 1.0
    im = ax.imshow(of.T, aspect="auto", cmap="viridis", vmin=0, vmax=vmax, origin="lower")
    ax.set_yticks(range(K), list(LETTERS[:K]))
    int_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("predicted option")
    if tp is not None:
        ax.axvline(tp - 0.5, color="w", ls="--")
    ax.set_title(title, fontsize=9)
    if lab is not None:
        axl.imshow(lab[:, None], aspect="auto", cmap="viridis", vmin=0, vmax=vmax, origin="lower")
        for k, v in enumerate(lab):
            axl.text(0, k, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 * vmax else "k")
        axl.set_xticks([0], ["gold\nlabels"], fontsize=7)
    else:
        axl.set_ylim(-0.5, K - 0.5)
        axl.text(0.5, 0.5, "label\nshares\nnot\nrecorded", ha="center", va="center", fontsize=6,
                 transform=axl.transAxes)
        axl.set_xticks([])
    axl.set_yticks([])
    fig.colorbar(im, ax=[ax, axl], label="share of questions", fraction=0.05, pad=0.02)
    return im


def of_figure(res: dict, labels=None):
    of = np.array([r["option_frequency"] for r in res["depths"]])       # [D, K]
    fig, (ax, axl) = plt.subplots(1, 2, figsize=(7.5, 3.2), layout="constrained",
                                  gridspec_kw={"width_ratios": [max(of.shape[0], 2), 1.4]})
    of_heatmap_axes(fig, ax, axl, of, labels, "Option Frequency by depth · " + _title(res),
                    tp=res.get("transition_point"))
    return fig


def plot_of_heatmap(res: dict, path: Path, labels=None) -> Path:
    return save(of_figure(res, labels), path)


def kl_figure(res: dict):
    d = res["depths"]
    x = [r["depth"] for r in d]
    fig, ax = plt.subplots(figsize=(7.5, 3.5))
    _mark_transition(ax, res)
    ax.plot(x, [r["kl_to_labels"] for r in d], "o-", label="KL(OF ‖ labels)")
    ax.plot(x, [r["entropy"] for r in d], "^-", label="entropy of OF (nats)")
    ax.plot(x, [r["top_option_share"] for r in d], "s-", label="top-option share")
    ax.set_xlim(-0.5, x[-1] + 0.5)
    int_ticks(ax)
    ax.set_xlabel("depth")
    legend_outside(ax)
    ax.set_title(_title(res), fontsize=9)
    return fig


def plot_kl(res: dict, path: Path) -> Path:
    return save(kl_figure(res), path)


def decision_depth_figure(res: dict):
    """Fraction of questions decided by depth l (Kaplan-Meier, both rules) with 95% bootstrap bands, and every
    transition estimator's point and CI as a bar under the curves (solid: identified, dotted: not)."""
    est = res["estimators"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (key, label) in enumerate((("decision_depth_pred", "prediction = final prediction"),
                                      ("decision_depth_gold", "prediction = gold"))):
        e = est[key]
        x = range(len(e["curve"]))
        ax.step(x, e["curve"], where="post", color=f"C{i}", label=f"decided, {label}")
        ax.fill_between(x, e["curve_ci"][0], e["curve_ci"][1], step="post", color=f"C{i}", alpha=0.2)
    ax.axhline(0.5, color="k", lw=0.6, ls=":")
    L = est["num_layers"]
    for i, key in enumerate(("mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint")):
        e, y = est[key], -0.06 - 0.05 * i
        lo, hi = (L + 0.5 if b is None else b for b in e["ci"])
        ls = "-" if e["verdict"] == "identified" else ":"
        art, = ax.plot([lo, hi], [y, y], ls, color=f"C{i + 2}", lw=2,
                       label=f"{key}: {'none' if e['point'] is None else e['point']} {tp_ci_text(e['ci'])} "
                             f"({e['verdict']})")
        if key == "mean_dm_tp":
            art.set_gid("tp_ci")
        if e["point"] is not None:
            ax.plot([e["point"]], [y], "o", color=f"C{i + 2}", ms=4)
    ax.set_xlim(-0.5, L + 0.5)
    int_ticks(ax)
    ax.set_ylim(-0.3, 1.02)
    ax.set_xlabel("depth (bars: 95% CIs; a bar reaching the right edge reaches 'none')")
    ax.set_ylabel("fraction of questions decided")
    legend_outside(ax)
    ax.set_title("Decision depth · " + _title(res), fontsize=9)
    return fig


def plot_decision_depth(res: dict, path: Path) -> Path:
    return save(decision_depth_figure(res), path)


# ---- pruned states (trajectory.json), redrawn by prune and by the report ------------------------------------------
def traj_label(t: dict) -> str:
    """A trajectory's method as prune/plots.label names it (the report's hand-made trajectories may lack params)."""
    p = t.get("params") or {}
    m = p.get("method") or t.get("method") or "?"
    return m + (" +SKIP" if p.get("skip") else "") + (" +heur" if p.get("heuristic") else "")


def depth_states(t: dict, ratios=None, key: str = "dm_mean", most: int = 6) -> list[dict]:
    """The dense state and pruned steps that carry per-depth rows `key`: those at `ratios`, else up to `most` spread
    evenly over the trajectory, always with the last step."""
    states = [s for s in [t.get("dense") or {}] + list(t.get("steps") or []) if s.get(key)]
    if ratios is not None:
        return [s for s in states if any(abs(s.get("ratio", 0) - r) < 1e-9 for r in ratios)]
    if len(states) <= most:
        return states
    idx = sorted({round(i * (len(states) - 1) / (most - 1)) for i in range(most)})
    return [states[i] for i in idx]


def _state_label(s: dict) -> str:
    return f"ratio {s.get('ratio', 0.0):.2f} ({len(s.get('removed') or [])} removed)"


def _colors(n):
    return [plt.cm.viridis(i / max(1, n - 1) * 0.9) for i in range(n)]


def dm_depth_figure(t: dict, ratios=None):
    """Mean DM by depth of the pruned model for chosen states (the same symlog rule as the dense plot), and above
    it each state's Transition Point with its 95% CI (a bar; dotted to the right edge when it reaches 'no TP')."""
    states = depth_states(t, ratios)
    if not states:
        raise ValueError("no state of this trajectory has per-depth rows (dm_mean)")
    fig, (top, ax) = plt.subplots(2, 1, figsize=(7.5, 4.6), sharex=True, layout="constrained",
                                  gridspec_kw={"height_ratios": [1, 4]})
    D = max(len(s["dm_mean"]) for s in states)
    for i, (s, c) in enumerate(zip(states, _colors(len(states)))):
        x = range(len(s["dm_mean"]))
        ax.plot(x, s["dm_mean"], "o-", ms=3, color=c, label=_state_label(s))
        tp, ci, last = s.get("transition_point"), s.get("tp_ci"), len(s["dm_mean"]) - 1
        if tp is not None:
            ax.axvline(tp, color=c, ls="--", lw=1)
        if ci and ci[0] is not None:
            hi = last + 0.5 if ci[1] is None else ci[1]
            art, = top.plot([ci[0], hi], [i, i], "-" if ci[1] is not None else ":", color=c, lw=3,
                            solid_capstyle="butt")
            art.set_gid("tp_ci")
        if tp is not None:
            top.plot([tp], [i], "o", color=c, ms=4)
        top.text(1.01, i, f"TP {'none' if tp is None else tp}, CI {tp_ci_text(ci) if ci else 'n/a'}",
                 transform=top.get_yaxis_transform(), fontsize=6, va="center", color=c)
    top.set_ylim(-0.7, len(states) - 0.3)
    top.set_yticks([])
    top.set_title(f"{traj_label(t)} · {Path(str(t.get('model', '?'))).name} · {t.get('task', '')}: TP and its 95% CI "
                  "(dotted: reaches 'no TP')", fontsize=8)
    ax.axhline(0, color="k", lw=0.8)
    scale = dm_scale(ax, [v for s in states for v in s["dm_mean"]])
    ax.set_xlim(-0.5, D - 0.5)
    int_ticks(ax, top)
    ax.set_xlabel("depth of the pruned model (dashed: its Transition Point)")
    ax.set_ylabel("DM mean" + (" (symlog)" if scale == "symlog" else ""))
    legend_outside(ax)
    return fig


def plot_dm_depth(t: dict, path: Path, ratios=None) -> Path:
    return save(dm_depth_figure(t, ratios), path, dpi=120)


def kl_depth_figure(t: dict, ratios=None):
    """KL(OF || labels) and accuracy by depth of the pruned model, for the dense state and chosen pruned states."""
    states = depth_states(t, ratios, key="kl_by_depth")
    if not states:
        raise ValueError("no state of this trajectory has per-depth rows (kl_by_depth)")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for s, c in zip(states, _colors(len(states))):
        axes[0].plot(range(len(s["kl_by_depth"])), s["kl_by_depth"], "o-", ms=3, color=c, label=_state_label(s))
        if s.get("acc_by_depth"):
            axes[1].plot(range(len(s["acc_by_depth"])), s["acc_by_depth"], "o-", ms=3, color=c)
    axes[0].set_ylabel("KL(OF ‖ labels)")
    axes[1].set_ylabel("accuracy")
    axes[1].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("depth of the pruned model")
        int_ticks(ax)
    legend_outside(axes[1], *axes[0].get_legend_handles_labels())
    fig.suptitle(f"{traj_label(t)} · {Path(str(t.get('model', '?'))).name} · {t.get('task', '')}: KL to the label "
                 "distribution and accuracy by depth", fontsize=9)
    return fig


def plot_kl_depth(t: dict, path: Path, ratios=None) -> Path:
    return save(kl_depth_figure(t, ratios), path, dpi=120)


def of_depth_figure(t: dict, ratios=None):
    """Option Frequency by depth (heatmaps, one per chosen state, each scaled to its data with the gold-label
    shares beside it); needs steps with `of_by_depth`."""
    states = depth_states(t, ratios, key="of_by_depth", most=4)
    if not states:
        raise ValueError("no state of this trajectory has per-depth Option Frequency (of_by_depth)")
    fig, axes = plt.subplots(len(states), 2, figsize=(7.5, 2.2 * len(states)), layout="constrained", squeeze=False,
                             gridspec_kw={"width_ratios": [max(len(s["of_by_depth"]) for s in states), 1.4]})
    for (ax, axl), s in zip(axes, states):
        of_heatmap_axes(fig, ax, axl, np.array(s["of_by_depth"]), s.get("label_distribution"),
                        f"{_state_label(s)}: Option Frequency by depth", tp=s.get("transition_point"),
                        xlabel="depth of the pruned model")
    return fig


def plot_of_depth(t: dict, path: Path, ratios=None) -> Path:
    return save(of_depth_figure(t, ratios), path, dpi=120)


def plot_of_kl(t: dict, path: Path) -> Path:
    """Option Frequency at the final depth across steps (scaled to its data) and KL(OF || labels) vs ratio."""
    states = [t["dense"]] + t["steps"]
    of = np.array([s["option_frequency"] for s in states])               # [S, K]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained", gridspec_kw={"width_ratios": [3, 2]})
    im = axes[0].imshow(of.T, aspect="auto", cmap="magma", vmin=0, vmax=float(of.max()) or 1.0, origin="lower")
    axes[0].set_xlabel("step (0 = dense)")
    axes[0].set_ylabel("option position")
    int_ticks(axes[0])
    int_ticks(axes[0], axis="y")
    axes[0].set_title("Option Frequency at the final depth", fontsize=9)
    fig.colorbar(im, ax=axes[0], label="share of questions")
    axes[1].plot([s.get("ratio", 0.0) for s in states], [s["kl_to_labels"] for s in states], "o-")
    axes[1].set_xlabel("pruning ratio")
    axes[1].set_ylabel("KL(OF ‖ labels) at the final depth")
    fig.suptitle(f"{traj_label(t)} · {Path(str(t.get('model', '?'))).name} · {t.get('task', '')}", fontsize=9)
    return save(fig, path, dpi=120)


def plot_analysis(res: dict, out: Path) -> list[Path]:
    out = Path(out)
    paths = [plot_dm(res, out / "dm_by_depth.png"),
             plot_of_heatmap(res, out / "of_heatmap.png", labels=label_shares(res, out)),
             plot_kl(res, out / "kl_by_depth.png")]
    if res.get("estimators"):
        paths.append(plot_decision_depth(res, out / "decision_depth.png"))
    return paths
