"""Sweeps of (model, task, method, seed) evaluation runs, in-process or on Ray; resumable. See docs/eval.md."""
from __future__ import annotations

from pathlib import Path

from .backends import check_local, is_done, run_local, run_ray, summarize
from .spec import Run, expand, load_spec


def run_sweep(spec, out=None, backend: str = "local", address: str | None = None, cpus_per_run: float = 1,
              gpus_per_run: float = 0, log=print) -> list[dict]:
    """Run every not-yet-finished run of `spec` (a YAML path or a dict); returns the summary rows."""
    if isinstance(spec, (str, Path)):
        runs, raw = load_spec(spec)
    else:
        runs, raw = expand(spec), spec
    out = Path(out or raw.get("out") or "sweep-out")
    todo = [r for r in runs if not is_done(out, r)]
    done = [r for r in runs if is_done(out, r)]
    log(f"sweep: {len(runs)} runs, {len(done)} already done, {len(todo)} to run ({backend})")
    if backend == "local":
        check_local(done, out)
        run_local(todo, out, log=log)
    elif backend == "ray":
        if todo or done:
            run_ray(todo, out, address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, log=log,
                    done=done)
    else:
        raise ValueError(f"unknown backend {backend!r}: choose local or ray")
    return summarize(out, runs)


__all__ = ["Run", "expand", "load_spec", "run_sweep"]
