"""One sweep run: (model, task, method, seed) -> lm-eval-shaped results. Runs anywhere (in-process or on a Ray
worker) and returns its files as text, so the driver writes them: workers need no shared file system."""
from __future__ import annotations

import importlib
import json
import os
import random
import time
from pathlib import Path

from ..results import _clean
from .spec import Run

_CACHE: dict = {}          # one loaded model per process: consecutive runs of a model on a worker reuse it


def _stamp(model: str) -> tuple:
    """(name, size, mtime) of a local checkpoint's files (none for a hub id): weights replaced under the same path
    are not the cached model."""
    p = Path(model).expanduser()
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)


def _load(run: Run):
    from ..model import load_model
    key = (run.model, json.dumps(run.load, sort_keys=True), _stamp(run.model))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_model(run.model, log=lambda *_: None, **run.load)
    return _CACHE[key]


def layers_to_remove(run: Run, lm) -> list[int]:
    m, L = run.method, lm.anatomy.num_layers
    if "remove" in m:
        r = m["remove"]
        try:
            return [int(x) for x in (r.split(",") if isinstance(r, str) else r)]
        except (TypeError, ValueError):
            raise ValueError(f"sweep method {m['name']!r}: remove must be layer ids, got {r!r}") from None
    for k in ("last", "random"):
        if k in m:
            n = m[k]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n < L:
                raise ValueError(f"sweep method {m['name']!r}: {k}: {n!r} must be an integer in 1..{L - 1} "
                                 f"({run.model} has {L} layers)")
    if "last" in m:
        return list(range(L - m["last"], L))
    if "random" in m:
        return sorted(random.Random(run.seed).sample(range(L), m["random"]))
    if "callable" in m:
        mod, _, fn = m["callable"].partition(":")
        return [int(x) for x in getattr(importlib.import_module(mod), fn)(lm, run.task, run.seed, **m.get("args", {}))]
    return []


def _eval_kw(run: Run) -> dict:
    ev = dict(run.eval)
    if ev.get("num_fewshot"):
        ev["fewshot_seed"] = run.seed
    return ev


def fingerprint(lm, samples) -> dict:
    """What a run's numbers come from beyond its spec, keyed as prune's resume key: the model's weights identity and
    the evaluated samples (few-shot contexts included), so a checkpoint or task file replaced under the same name is
    never taken for a finished run."""
    from ..fingerprint import model_identity, samples_digest
    return {"model": model_identity(lm), "samples": samples_digest(samples)}


def check_run(run: Run, stored: dict, num_threads: int | None = None) -> dict:
    """Resume check of a finished run (its run.json `stored`), where the model and data are (a Ray worker has
    them, the driver may not). Returns {"run_id", "changed": [what differs, in prune's words]}; [] = still valid."""
    import torch

    from ..evaluate.run import prepare_task
    from ..prune.trajectory import resume_mismatch
    if num_threads:
        torch.set_num_threads(num_threads)
    ev = _eval_kw(run)
    task = prepare_task(run.task, **{k: ev[k] for k in ("split", "data_dir", "limit", "num_fewshot", "fewshot_seed",
                                                          "fewshot_split") if k in ev})[0]
    lm = _load(run)
    changed = resume_mismatch(stored, {"fingerprint": fingerprint(lm, task.samples)}, lm)
    return {"run_id": run.run_id, "changed": changed}


def execute_run(run: Run, num_threads: int | None = None) -> dict:
    """Evaluate one run. Returns {"run_id", "results", "files": {name: text}, "fingerprint", "seconds", "host"}."""
    import torch

    from ..evaluate.pipeline import run_eval
    from ..evaluate.schema import sample_records
    if num_threads:
        torch.set_num_threads(num_threads)
    t0 = time.time()
    lm = _load(run)
    remove = layers_to_remove(run, lm)
    ev = _eval_kw(run)
    captured = []
    res = run_eval(run.model, [run.task], None, lm=lm, remove=remove or None, progress=False,
                   on_evals=captured.append, **ev)
    files = {"results.json": json.dumps(_clean(res), indent=1, default=str) + "\n"}
    for te in captured[0]:
        files[f"samples_{te.task.name.replace(':', '_')}.jsonl"] = "".join(
            json.dumps(r, ensure_ascii=False) + "\n" for r in sample_records(te))
    return {"run_id": run.run_id, "results": res, "files": files, "seconds": round(time.time() - t0, 3),
            "fingerprint": fingerprint(lm, captured[0][0].task.samples), "host": os.uname().nodename,
            "pid": os.getpid()}
