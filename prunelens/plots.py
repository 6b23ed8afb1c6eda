"""Figures of the decision lens (the paper's Figures 1, 4, 5). Every function takes the JSON result, so plots can
be redrawn from a finished run without the model."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .tasks.base import LETTERS  # noqa: E402


def _title(res: dict) -> str:
    return f"{Path(str(res['model'])).name} · {res['task']} ({res['format']}, n={res['n_samples']})"


def _mark_transition(ax, res: dict) -> None:
    tp = res.get("transition_point")
    if tp is None:
        ax.text(0.02, 0.95, "no transition (silent throughout)", transform=ax.transAxes, va="top", color="C3")
        return
    ax.axvspan(-0.5, tp - 0.5, color="0.85", zorder=0, label="Silent Phase")
    ax.axvline(tp, color="C3", ls="--", label=f"Transition Point = {tp}")


def plot_dm(res: dict, path: Path) -> Path:
    d = res["depths"]
    x = [r["depth"] for r in d]
    fig, ax = plt.subplots(figsize=(7, 4))
    _mark_transition(ax, res)
    ax.plot(x, [r["dm_mean"] for r in d], "o-", color="C0", label="DM mean")
    ax.fill_between(x, [r["dm_ci"][0] for r in d], [r["dm_ci"][1] for r in d], color="C0", alpha=0.25,
                    label="95% bootstrap CI")
    ax.plot(x, [r["dm_median"] for r in d], ":", color="C0", label="DM median")
    ax.axhline(0, color="k", lw=0.8)
    # Early-depth lens margins can be hundreds of nats while the crossing happens within a few: symlog shows both.
    if max(abs(r["dm_mean"]) for r in d) > 20:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("depth (0 = embeddings, l = after layer l-1)")
    ax.set_ylabel(f"Decision Margin ({res['margin']}, {res.get('score', 'raw')})")
    ax2 = ax.twinx()
    ax2.plot(x, [r["acc"] for r in d], "s-", color="C2", ms=3, alpha=0.7, label="accuracy")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("accuracy", color="C2")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    ax.set_title(_title(res), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_of_heatmap(res: dict, path: Path) -> Path:
    of = np.array([r["option_frequency"] for r in res["depths"]])       # [D, K]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    im = ax.imshow(of.T, aspect="auto", cmap="viridis", vmin=0, vmax=1, origin="lower")
    ax.set_yticks(range(of.shape[1]), list(LETTERS[:of.shape[1]]))
    ax.set_xlabel("depth")
    ax.set_ylabel("predicted option")
    if res.get("transition_point") is not None:
        ax.axvline(res["transition_point"] - 0.5, color="w", ls="--")
    fig.colorbar(im, ax=ax, label="Option Frequency")
    ax.set_title("Option Frequency by depth · " + _title(res), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_kl(res: dict, path: Path) -> Path:
    d = res["depths"]
    x = [r["depth"] for r in d]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    _mark_transition(ax, res)
    ax.plot(x, [r["kl_to_labels"] for r in d], "o-", label="KL(OF ‖ labels)")
    ax.plot(x, [r["entropy"] for r in d], "^-", label="entropy of OF (nats)")
    ax.plot(x, [r["top_option_share"] for r in d], "s-", label="top-option share")
    ax.set_xlabel("depth")
    ax.legend(fontsize=7)
    ax.set_title(_title(res), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_decision_depth(res: dict, path: Path) -> Path:
    """Fraction of questions decided by depth l (Kaplan-Meier, both rules) with 95% bootstrap bands, and every
    transition estimator's point and CI as a bar under the curves (solid: identified, dotted: not)."""
    est = res["estimators"]
    fig, ax = plt.subplots(figsize=(7, 4))
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
        ax.plot([lo, hi], [y, y], ls, color=f"C{i + 2}", lw=2,
                label=f"{key}: {'none' if e['point'] is None else e['point']} ({e['verdict']})")
        if e["point"] is not None:
            ax.plot([e["point"]], [y], "o", color=f"C{i + 2}", ms=4)
    ax.set_xlim(-0.5, L + 0.5)
    ax.set_ylim(-0.3, 1.02)
    ax.set_xlabel("depth (bars: 95% CIs; a bar reaching the right edge reaches 'none')")
    ax.set_ylabel("fraction of questions decided")
    ax.legend(fontsize=6, loc="upper left")
    ax.set_title("Decision depth · " + _title(res), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_analysis(res: dict, out: Path) -> list[Path]:
    out = Path(out)
    paths = [plot_dm(res, out / "dm_by_depth.png"), plot_of_heatmap(res, out / "of_heatmap.png"),
             plot_kl(res, out / "kl_by_depth.png")]
    if res.get("estimators"):
        paths.append(plot_decision_depth(res, out / "decision_depth.png"))
    return paths
