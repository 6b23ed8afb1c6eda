"""Summary of several trajectories on one task: accuracy and final DM with their 95% bootstrap CIs per pruning
ratio, random seeds pooled (mean and range), and the IP-vs-control gaps at equal ratio. Read by `prunelens compare`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics.estimators import estimator_cell
from ..results import atomic_write_text, read_json, staged
from .plots import label, plot_vs_ratio, removed_table


def load_trajectories(paths) -> list[dict]:
    trajs = []
    for p in map(Path, paths):
        files = [p] if p.suffix == ".json" else sorted(p.rglob("trajectory.json"))
        if not files:
            raise FileNotFoundError(f"no trajectory.json under {p}")
        from ..analyses.trajectories import validate
        for f in files:
            t = read_json(f)
            validate(t, str(f))
            trajs.append(t)
    return trajs


def _states(t: dict) -> list[dict]:
    return [t["dense"]] + list(t["steps"])


def _est(s: dict, key: str) -> str:
    e = (s.get("estimators") or {}).get(key)
    if e is None and key == "mean_dm_tp":            # trajectories written before the estimators: the TP alone
        return "none" if s.get("transition_point") is None else str(s["transition_point"])
    return estimator_cell(e)


def _ci(s: dict, key: str) -> str:
    lo, hi = s[f"{key}_ci"]
    return f"{s[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def summary_markdown(trajs: list[dict]) -> str:
    t0 = trajs[0]
    groups: dict[str, list[dict]] = {}
    for t in trajs:
        groups.setdefault(label(t), []).append(t)
    out = [f"# {t0['task']} ({t0['params']['format']}, n={t0['n_samples']}): accuracy and final Decision Margin "
           f"per pruning ratio", "",
           "95% bootstrap CIs over questions. Random: mean over seeds, with the range of the seeds' accuracies.", "",
           "Transition estimators per state: point [95% CI], \"identified\" when the CI locates it (metrics/"
           "estimators.py); TP = the paper's mean-DM Transition Point, DD = median decision depth (prediction / gold "
           "rule), CP = accuracy change-point.", "",
           "| method | ratio | removed (original ids, in order) | acc [95% CI] | DM final [95% CI] | TP | DDpred | "
           "DDgold | CP |",
           "|---|---:|---|---|---|---:|---|---|---|"]
    for name, ts in groups.items():
        if len(ts) == 1:
            for s in _states(ts[0]):
                out.append(f"| {name} | {s.get('ratio', 0.0):.2f} | {' '.join(map(str, s.get('removed', [])))} | "
                           f"{_ci(s, 'acc')} | {_ci(s, 'dm_final')} | {_est(s, 'mean_dm_tp')} | "
                           f"{_est(s, 'decision_depth_pred')} | {_est(s, 'decision_depth_gold')} | "
                           f"{_est(s, 'acc_changepoint')} |")
            continue
        n = min(len(_states(t)) for t in ts)
        for j in range(n):
            ss = [_states(t)[j] for t in ts]
            acc = np.array([s["acc"] for s in ss])
            dm = np.array([s["dm_final"] for s in ss])
            out.append(f"| {name} ({len(ts)} seeds) | {ss[0].get('ratio', 0.0):.2f} | "
                       f"{' / '.join(' '.join(map(str, s.get('removed', []))) or '-' for s in ss)} | "
                       f"{acc.mean():.3f} (seeds {acc.min():.3f}-{acc.max():.3f}) | {dm.mean():.3f} "
                       f"(seeds {dm.min():.3f}-{dm.max():.3f}) | - | - | - | - |")
    gaps = _gaps(groups)
    if gaps:
        out += ["", "## Gaps at equal ratio (accuracy)", "", "| ratio | " + " | ".join(gaps[0][1]) + " |",
                "|---:|" + "---:|" * len(gaps[0][1])]
        out += [f"| {r:.2f} | " + " | ".join(f"{v:+.3f}" if v is not None else "-" for v in vals.values()) + " |"
                for r, vals in gaps]
    for t in trajs:
        if t["params"].get("skip") and t.get("search"):
            out += ["", f"SKIP-Prun restarts ({label(t)}): " + "; ".join(
                f"after node {r['after_node']} (dead edge {r['dead_edge']}) from {r['from_removed']}"
                for r in t["search"]["restarts"]) if t["search"]["restarts"] else "none"]
    return "\n".join(out) + "\n"


def _gaps(groups: dict[str, list[dict]]) -> list[tuple[float, dict]]:
    """Accuracy of the IP trajectory minus each other method (random: mean over seeds) at every ratio."""
    ip = next((k for k in groups if k.startswith("iterative")), None)
    if ip is None or len(groups) < 2:
        return []
    by_ratio = {name: {} for name in groups}
    for name, ts in groups.items():
        for t in ts:
            for s in _states(t):
                by_ratio[name].setdefault(round(s.get("ratio", 0.0), 6), []).append(s["acc"])
    rows = []
    for r in sorted(by_ratio[ip]):
        a = np.mean(by_ratio[ip][r])
        rows.append((r, {f"{ip} - {k}": (a - np.mean(v[r])) if r in v else None
                         for k, v in by_ratio.items() if k != ip}))
    return rows


def compare(paths, out) -> list[Path]:
    """Chart, removed-layer table and summary.md over every trajectory under `paths`, written to `out`."""
    trajs = load_trajectories(paths)
    tasks = {t["task"] for t in trajs}
    if len(tasks) > 1:
        raise ValueError(f"compare takes trajectories of one task, got {sorted(tasks)}")
    out = Path(out)
    with staged(out) as d:                 # one run: a failure leaves the previous comparison as it was
        files = [plot_vs_ratio(trajs, d / "compare_acc_dm_vs_ratio.png"), *removed_table(trajs, d, "compare_removed"),
                 atomic_write_text(d / "summary.md", summary_markdown(trajs))]
    return [out / f.name for f in files]
