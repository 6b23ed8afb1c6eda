"""`prunelens compare`: several pruning trajectories of one task on one chart, with a summary table (CIs)."""
from __future__ import annotations


def cmd_compare(a) -> int:
    from ..prune.summary import compare
    for p in compare(a.paths, a.out):
        print(p)
    return 0


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare pruning trajectories: chart, removed-layer table, summary with CIs")
    p.add_argument("paths", nargs="+", help="prune output folders or trajectory.json files (searched recursively)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_compare)
