"""`prunelens correlate`: critical pruning ratio per trajectory and its Pearson r with TP/L (Figure 8)."""
from __future__ import annotations

from pathlib import Path


def cmd_correlate(a) -> int:
    from ..analyses.run import run_correlation
    from .common import prepare_out
    prepare_out(a, *[("run", p) for p in a.runs if not Path(p).is_dir()])
    r = run_correlation(a.out, a.runs, gamma=a.gamma, method=a.method)
    for p in r["points"]:
        print(f"{p['model']} / {p['task']} [{p['method']}]: TP/L={p['tp_relative']}, critical ratio="
              f"{p['critical_ratio']}" + (f" (censored: > {p['max_ratio']})" if p["censored"] else ""))
    if r["r"] is None:
        print(f"n={r['n']} usable points: Pearson r is undefined (needs >= 3 with varying values)")
    else:
        print(f"Pearson r={r['r']:.3f}, p={r['p']:.3g}, n={r['n']} (|r| > {r['min_significant_r']:.2f} needed for "
              f"p<0.05 at this n)")
    print(f"results: {a.out}/correlation.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser("correlate", help="critical ratio vs Transition Point depth across trajectories (Figure 8)")
    p.add_argument("runs", nargs="+", help="run folders (searched for trajectory.json) or trajectory.json files")
    from .common import _common_out, unit_interval
    _common_out(p)
    p.add_argument("--gamma", type=unit_interval, default=0.5, help="threshold: chance + gamma * (dense - chance)")
    p.add_argument("--method", default=None, help="only trajectories of this pruning method (e.g. ip)")
    p.set_defaults(func=cmd_correlate)
