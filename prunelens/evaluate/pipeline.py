"""`run_eval`: load (or take) a model, optionally enter a pruned view, evaluate the tasks, write lm-eval-shaped
outputs. The CLI (`prunelens eval`) and the sweep runner both call this."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from ..model.surgery import pruned_view
from .fewshot import DEFAULT_SEED
from .run import evaluate, prepare_task
from .schema import markdown_table, results_dict, write_outputs
from .view import resolve_view


def split_tasks(tasks) -> list[str]:
    """A comma list (or list) of task names: "arc_easy,mmlu_anatomy,mmlu_virology" (one syntax, lm-eval's); an
    "mmlu:anatomy,virology" item stays one pooled task (`tasks.split_task_list`)."""
    from ..tasks import split_task_list
    tasks = split_task_list(tasks)
    if not tasks:
        raise ValueError("no tasks given")
    return tasks


def run_eval(model, tasks, out=None, *, split=None, data_dir=None, limit=None, num_fewshot: int = 0,
             fewshot_seed: int = DEFAULT_SEED, fewshot_split=None, remove=None, trajectory=None, step=None,
             device="auto", dtype="auto", device_map=None, offload_folder=None, batch_size: int = 16,
             trust_remote_code=False, progress=True, lm=None, log=print, on_evals=None) -> dict:
    """Evaluate and (if `out`) write DIR/results.json + samples_<task>.jsonl. Returns the results dict."""
    from ..model import load_model
    from ..results import staged
    from ..tasks.limits import check_lengths
    start = time.time()
    tasks = split_tasks(tasks)
    from ..engine.autobatch import is_auto, used
    for name, v, lo in (("--num-fewshot", num_fewshot, 0), ("--batch-size", batch_size, 1), ("--limit", limit, 1)):
        if name == "--batch-size" and is_auto(v):
            continue                         # the largest batch that fits (engine/autobatch.py)
        if name == "--limit" and isinstance(v, float) and 0 < v < 1:
            continue                         # lm-eval's fractional --limit: that share of each task's documents
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
            raise ValueError(f"{name} must be an integer >= {lo}" + (" or a fraction 0 < x < 1" if name == "--limit"
                                                                       else "") + f", got {v!r}")
    # Tasks first: bad names or malformed data fail before minutes of model loading.
    prepared = [prepare_task(t, split, data_dir, limit, num_fewshot, fewshot_seed, fewshot_split) for t in tasks]
    lm = lm or load_model(model, device=device, dtype=dtype, device_map=device_map, offload_folder=offload_folder,
                          trust_remote_code=trust_remote_code, log=log)
    L = lm.anatomy.num_layers
    keep, merged, pruned = resolve_view(lm, remove, trajectory, step)
    for task, _, _ in prepared:             # every prompt (few-shot contexts included) fits, before any compute
        check_lengths(lm, task.samples, "cloze", what=task.name)
    ctx = pruned_view(lm, keep, merged) if keep is not None else contextlib.nullcontext(lm)
    with ctx:
        evals = evaluate(lm, tasks, batch_size=batch_size, num_fewshot=num_fewshot, progress=progress,
                         prepared=prepared)
    config = {"model": "prunelens", "model_args": f"pretrained={model}", "model_name": str(model),
              "model_path": lm.path, "model_class": lm.anatomy.model_class, "num_layers": L,
              "pruned": pruned or None,
              "batch_size": used(lm, batch_size), "device": str(lm.device),
              "dtype": str(next(lm.model.parameters()).dtype),
              "device_map": device_map if isinstance(device_map, (str, type(None))) else "custom",
              "limit": limit, "num_fewshot": num_fewshot, "fewshot_seed": fewshot_seed, "split": split,
              "data_dir": str(data_dir) if data_dir else None}
    results = results_dict(evals, config, start)
    if on_evals is not None:             # the sweep runner serialises the per-sample records itself
        on_evals(evals)
    if out is not None:
        with staged(Path(out)) as d:         # one run: a failure leaves a previous run in `out` as it was
            write_outputs(d, results, evals)
    return results


__all__ = ["run_eval", "markdown_table"]
