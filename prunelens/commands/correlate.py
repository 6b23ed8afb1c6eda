"""`prunelens correlate`: critical pruning ratio per trajectory and its Pearson r with TP/L (Figure 8)."""
from __future__ import annotations

from pathlib import Path


def cmd_correlate(a) -> int:
    from ..analyses.run import run_correlation
    from .common import data_dir_env, prepare_out
    prepare_out(a, *[("run", p) for p in a.runs if not Path(p).is_dir()])
    with data_dir_env(a.data_dir):
        r = run_correlation(a.out, a.runs, gamma=a.gamma, method=a.method)
    for p in r["points"]:
        print(f"{p['model']} / {p['task']} [{p['method']}]: TP/L={p['tp_relative']}, critical ratio="
              f"{p['critical_ratio']}" + (f" (censored: > {p['max_ratio']})" if p["censored"] else " (trajectory still running)"
                                    if p.get("running") else ""))
    if r["r"] is None:
        print(f"n={r['n']} usable points: Pearson r is undefined (needs >= 3 with varying values)")
    else:
        print(f"Pearson r={r['r']:.3f}, p={r['p']:.3g}, n={r['n']} (|r| > {r['min_significant_r']:.2f} needed for "
              f"p<0.05 at this n)")
    from ..metrics.estimators import NAMES
    for k, b in (r.get("by_estimator") or {}).items():
        ci = b.get("r_ci")
        print(f"with {NAMES.get(k, k)} in place of the TP: " + (
            f"r={b['r']:.3f}" + (f", 95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ", no CI (n < 4)")
            if b["r"] is not None else "r undefined") + f", n={b['n']} ({b['n_identified']} identified)")
    print(f"results: {a.out}/correlation.json")
    return 0


def method_name(s) -> str:
    """--method: a pruning method of `prunelens prune` (SKIP-Prun runs are "<method>+skip"); a wrong name lists the
    valid ones (exit 2)."""
    import argparse

    from .prune import METHOD_NAMES
    s = str(s).strip()
    valid = [*METHOD_NAMES, "iterative+skip"]             # SKIP-Prun restarts exist for iterative only
    if s not in valid:
        raise argparse.ArgumentTypeError(f"unknown method {s!r}; choose from {', '.join(valid)}")
    return s


def register(sub) -> None:
    p = sub.add_parser("correlate", help="critical ratio vs Transition Point depth across trajectories (Figure 8)")
    p.add_argument("runs", nargs="+", help="run folders (searched for trajectory.json) or trajectory.json files")
    from .common import DATA_DIR_HELP, _common_out, conventions, unit_interval
    _common_out(p)
    p.add_argument("--gamma", type=unit_interval, default=0.5, help="threshold: chance + gamma * (dense - chance)")
    p.add_argument("--method", default=None, type=method_name,
                   help="only trajectories of this pruning method (as in `prune --method`; SKIP-Prun: iterative+skip)")
    p.add_argument("--data-dir", default=None,
                   help="benchmark data, read to compute a task's chance level when a trajectory does not store it; "
                        + DATA_DIR_HELP)
    p.set_defaults(func=cmd_correlate)
    conventions(p)
