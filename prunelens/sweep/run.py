"""One sweep run: (model, task, method, seed) -> lm-eval-shaped results. Runs anywhere (in-process or on a Ray
worker) and returns its files as text, so the driver writes them: workers need no shared file system."""
from __future__ import annotations

import importlib
import json
import os
import random
import time

from ..results import _clean
from .spec import Run

_CACHE: dict = {}          # one loaded model per process: consecutive runs of a model on a worker reuse it


def _load(run: Run):
    from ..model import load_model
    key = (run.model, json.dumps(run.load, sort_keys=True))
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


def execute_run(run: Run, num_threads: int | None = None) -> dict:
    """Evaluate one run. Returns {"run_id", "results", "files": {name: text}, "seconds", "host"}."""
    import torch

    from ..evaluate.pipeline import run_eval
    from ..evaluate.schema import sample_records
    if num_threads:
        torch.set_num_threads(num_threads)
    t0 = time.time()
    lm = _load(run)
    remove = layers_to_remove(run, lm)
    ev = dict(run.eval)
    if ev.get("num_fewshot"):
        ev["fewshot_seed"] = run.seed
    captured = []
    res = run_eval(run.model, [run.task], None, lm=lm, remove=remove or None, progress=False,
                   on_evals=captured.append, **ev)
    files = {"results.json": json.dumps(_clean(res), indent=1, default=str) + "\n"}
    for te in captured[0]:
        files[f"samples_{te.task.name.replace(':', '_')}.jsonl"] = "".join(
            json.dumps(r, ensure_ascii=False) + "\n" for r in sample_records(te))
    return {"run_id": run.run_id, "results": res, "files": files, "seconds": round(time.time() - t0, 3),
            "host": os.uname().nodename, "pid": os.getpid()}
