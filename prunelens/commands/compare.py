"""`prunelens compare`: several pruning trajectories of one task on one chart, with a summary table (CIs)."""
from __future__ import annotations

from pathlib import Path


def cmd_compare(a) -> int:
    from ..prune.summary import compare
    from .common import prepare_out
    # The run folders it reads may hold its output (it only adds its own files); a trajectory file may not.
    prepare_out(a, *[("path", p) for p in a.paths if not Path(p).is_dir()])
    for p in compare(a.paths, a.out):
        print(p)
    return 0


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare pruning trajectories: chart, removed-layer table, summary with CIs")
    p.add_argument("paths", nargs="+", help="prune output folders or trajectory.json files (searched recursively)")
    from .common import _common_out, conventions
    _common_out(p, help="output folder for the chart and tables")
    p.set_defaults(func=cmd_compare)
    conventions(p)
