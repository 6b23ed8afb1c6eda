"""Executing a sweep's runs: in-process (`local`) or as Ray tasks (`ray`), with per-run outputs and resume.

Layout: OUT/runs/<run_id>/{results.json, samples_<task>.jsonl, run.json}; `run.json` is written last, so a run
folder without it is incomplete and is redone. A finished run is kept only while its model weights and evaluated
samples are the ones it was computed from (`fingerprint` in run.json, checked where the run would execute):
otherwise the sweep is refused, naming what changed, as a prune resume is. OUT/summary.jsonl gets one line per
finished run (rewritten at the end from all run folders). Files are written by the driver from what each run returns.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from ..results import atomic_write_text
from .run import check_run, execute_run
from .spec import Run


def is_done(out: Path, run: Run) -> bool:
    return (out / "runs" / run.run_id / "run.json").is_file()


def stored_run(out: Path, run: Run) -> dict:
    return json.loads((out / "runs" / run.run_id / "run.json").read_text())


def refuse_changed(out: Path, run: Run, changed: list[str]) -> None:
    if changed:
        raise ValueError(f"{out / 'runs' / run.run_id} is another run, made with different {', '.join(changed)}: "
                         f"delete that folder to recompute it, or use another --out")


def check_local(runs: list[Run], out: Path) -> None:
    """Refuse before any compute if a finished run's model weights or samples changed since."""
    for run in runs:
        refuse_changed(out, run, check_run(run, stored_run(out, run))["changed"])


def write_run(out: Path, run: Run, payload: dict) -> None:
    d = out / "runs" / run.run_id
    for name, text in payload["files"].items():
        atomic_write_text(d / name, text)
    meta = {"run": asdict(run), "run_id": run.run_id, "fingerprint": payload["fingerprint"],
            "seconds": payload["seconds"], "host": payload["host"], "pid": payload["pid"], "finished": time.time()}
    atomic_write_text(d / "run.json", json.dumps(meta, indent=1, default=str) + "\n")


def summarize(out: Path, runs: list[Run]) -> list[dict]:
    rows = []
    for run in runs:
        d = out / "runs" / run.run_id
        if not (d / "run.json").is_file():
            continue
        res = json.loads((d / "results.json").read_text())
        meta = json.loads((d / "run.json").read_text())
        for task, r in res["results"].items():
            rows.append({"run_id": run.run_id, "model": run.model, "task": task, "method": run.method["name"],
                         "seed": run.seed, "removed": (res["config"]["pruned"] or {}).get("removed", []),
                         **{k.split(",")[0]: v for k, v in r.items() if k != "alias"},
                         "n": res["n-samples"][task]["effective"], "seconds": meta["seconds"],
                         "host": meta["host"], "pid": meta["pid"]})
    atomic_write_text(out / "summary.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def run_local(runs: list[Run], out: Path, log=print) -> None:
    for i, run in enumerate(runs):
        payload = execute_run(run)
        write_run(out, run, payload)
        log(f"[{i + 1}/{len(runs)}] {run.run_id} done in {payload['seconds']:.1f} s")


def run_ray(runs: list[Run], out: Path, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
            log=print, done: list[Run] = ()) -> None:
    """One Ray task per run. `address`: None starts (or joins) a local instance; "auto" or "ray://host:10001"
    joins a cluster started with `ray start`. Results travel back to this driver, which writes them. The finished
    runs `done` are checked first, as `check_local` does, but on the workers: they have the models and data."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs the `ray` package: pip install ray") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    threads = max(1, int(cpus_per_run))
    check = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=1)(check_run)
    for run, ref in [(r, check.remote(r, stored_run(out, r), threads)) for r in done]:
        refuse_changed(out, run, ray.get(ref)["changed"])
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=1)(execute_run)
    pending = {task.remote(run, threads): run for run in runs}
    n = 0
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        run = pending.pop(done[0])
        payload = ray.get(done[0])          # a failed run raises here with the worker's traceback
        write_run(out, run, payload)
        n += 1
        log(f"[{n}/{len(runs)}] {run.run_id} done in {payload['seconds']:.1f} s on {payload['host']}:{payload['pid']}")
