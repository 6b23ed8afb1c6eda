"""`prunelens report RUN_DIR [RUN_DIR ...] --out DIR`: one self-contained HTML report, DIR/report.html. (`--out X.html`,
the old form, still writes that file, with a deprecation note.)"""
from __future__ import annotations

from pathlib import Path


def cmd_report(a) -> int:
    from ..report import build_report
    from ..report.collect import collect
    from ..report.findings import claim_table
    from ..results import staged
    from .common import data_dir_env, prepare_out, say
    # A run folder may hold the report's folder (runs/report), never be it or lie inside it: a report folder is a
    # run folder of its own, whose previous files --overwrite replaces.
    inputs = [("run", p) for p in a.runs]
    with data_dir_env(a.data_dir):
        if str(a.out).lower().endswith((".html", ".htm")):       # the old form: --out is a folder everywhere now
            say(f"note: --out {a.out}: a .html file is deprecated, --out is a folder (it gets report.html); "
                "writing the file this once")
            prepare_out(a, *inputs, kind="file")
            p = build_report(a.runs, a.out, title=a.title)
        else:
            out = prepare_out(a, *inputs)
            with staged(out) as d:
                build_report(a.runs, d / "report.html", title=a.title, findings_dir=d)
            p = out / "report.html"
        t = claim_table(collect(a.runs))
    for r in t["rows"]:
        per = "; ".join(f"{m}: {r['per_model'][m]['status']}" for m in t["models"]) if len(t["models"]) > 1 else ""
        print(f"[{r['pooled']['status']}] {r['claim']}" + (f"  (per model: {per}; joint: {r['joint']})" if per else ""))
    print(f"report: {p}" + ("" if str(p) == str(a.out) else f" (claims per model: {Path(p).parent}/findings.md)"))
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="self-contained HTML report (inline images, works offline) with findings")
    p.add_argument("runs", nargs="+", help="run folders; every known *.json result under them is used")
    from .common import DATA_DIR_HELP, _common_out, conventions
    _common_out(p, help="output folder: the report is DIR/report.html (a path ending in .html is the deprecated "
                        "form: that file is written, with a note)")
    p.add_argument("--title", default="prunelens report", help="the report's title")
    p.add_argument("--data-dir", default=None,
                   help="benchmark data, read to compute a task's chance level when a run does not store it; "
                        + DATA_DIR_HELP)
    p.set_defaults(func=cmd_report)
    conventions(p)
