"""`prunelens report RUN_DIR [RUN_DIR ...] --out report.html`: one self-contained HTML report."""
from __future__ import annotations

from pathlib import Path


def cmd_report(a) -> int:
    from ..report import build_report
    from ..report.collect import collect
    from ..report.findings import findings
    from .common import prepare_out
    prepare_out(a, *[("run", p) for p in a.runs if not Path(p).is_dir()], kind="file")
    p = build_report(a.runs, a.out, title=a.title)
    for f in findings(collect(a.runs)):
        print(f"[{f.status}] {f.claim}")
    print(f"report: {p}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="self-contained HTML report (inline images, works offline) with findings")
    p.add_argument("runs", nargs="+", help="run folders; every known *.json result under them is used")
    from .common import _common_out
    _common_out(p, help="report.html")
    p.add_argument("--title", default="prunelens report")
    p.set_defaults(func=cmd_report)
