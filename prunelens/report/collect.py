"""Find every result file under the run folders, by name, so the report consumes whatever it is given."""
from __future__ import annotations

from pathlib import Path

from ..results import read_json

KINDS = ("analysis", "trajectory", "cka", "noise", "ablation", "correlation", "recovery", "controls", "restore",
         "skips", "readout", "plan", "plan_evaluation")


def collect(run_dirs) -> dict[str, list[dict]]:
    """{kind: [result dict + "_dir" (folder of the file)]} for each kind in KINDS; unreadable files are skipped
    with a note in "_skipped" rather than failing the whole report."""
    out: dict[str, list] = {k: [] for k in KINDS}
    out["_skipped"] = []
    seen = set()
    for d in map(Path, run_dirs):
        if not d.exists():
            raise FileNotFoundError(f"run folder not found: {d}")
        files = [d] if d.is_file() else sorted(d.rglob("*.json"))
        for f in files:
            kind = f.stem
            if kind not in KINDS or f.resolve() in seen:
                continue
            seen.add(f.resolve())
            try:
                res = read_json(f)
            except (OSError, ValueError) as e:
                out["_skipped"].append(f"{f}: {e}")
                continue
            res["_dir"], res["_file"] = str(f.parent), str(f)
            out[kind].append(res)
    return out
