"""Zero-/few-shot evaluation at lm-eval-harness parity: score every option's continuation log-likelihood at the last
depth only (`score_cloze(depths=[L])`: shared-context KV cache, length-sorted batches, continuation-only projection),
then lm-eval's metrics: acc = argmax(loglik) == gold, acc_norm = argmax(loglik / len(choice chars)) == gold (first
index wins ties, as np.argmax), stderr = sample std (n-1) / sqrt(n) (lm-eval `mean_stderr`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..engine.score import score_cloze
from ..tasks import Task, load_task, resolve_limit
from .fewshot import DEFAULT_SEED, load_pool, uses_first_n, with_fewshot


@dataclass
class TaskEval:
    task: Task                           # the evaluated samples (few-shot contexts already applied)
    n_original: int                      # samples in the split before --limit
    metrics: dict                        # {"acc": x, "acc_stderr": s, ["acc_norm": .., "acc_norm_stderr": ..]}
    loglik: np.ndarray                   # [N, Kmax] final-depth log-likelihoods (NaN = no such option)
    greedy: np.ndarray                   # [N, Kmax] lm-eval is_greedy
    correct: dict                        # metric -> [N] 0/1
    num_fewshot: int = 0
    fewshot: dict = field(default_factory=dict)   # split, seed, sampler
    seconds: float = 0.0


def mean_stderr(x) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def argmax_first(a: np.ndarray) -> np.ndarray:
    """Row-wise argmax ignoring NaN (absent options); ties go to the lowest index, as np.argmax in lm-eval."""
    return np.argmax(np.where(np.isnan(a), -np.inf, a), axis=1)


def metrics_from(loglik: np.ndarray, choices, gold: np.ndarray, names) -> tuple[dict, dict]:
    lens = np.full(loglik.shape, np.nan)
    for i, c in enumerate(choices):
        lens[i, :len(c)] = [float(len(x)) for x in c]
    preds = {"acc": argmax_first(loglik), "acc_norm": argmax_first(loglik / lens)}
    correct, out = {}, {}
    for m in names:
        correct[m] = (preds[m] == gold).astype(float)
        out[m] = float(correct[m].mean())
        out[f"{m}_stderr"] = mean_stderr(correct[m])
    return out, correct


def prepare_task(name: str, split=None, data_dir=None, limit=None, num_fewshot: int = 0, fewshot_seed=DEFAULT_SEED,
                 fewshot_split=None) -> tuple[Task, int, dict]:
    """Load a task, keep the first `limit` samples (lm-eval --limit: N documents, or a fraction 0 < x < 1 of them) and
    apply few-shot contexts. Every spelling of a task name is resolved by `tasks.resolve_task` first, so e.g.
    "mmlu_anatomy" and "mmlu:anatomy" get the same samples and the same (dev, first_n) shots."""
    full = load_task(name, split=split, data_dir=data_dir)
    n_limit = resolve_limit(limit, len(full.samples))
    samples = full.samples[:n_limit] if n_limit is not None else full.samples
    fs = {}
    if num_fewshot > 0:
        pool, used = load_pool(name, full.split, data_dir, fewshot_split)
        first_n = uses_first_n(name)
        samples = with_fewshot(samples, pool, num_fewshot, fewshot_seed, first_n=first_n,
                               exclude_self=used == full.split)
        fs = {"split": used, "seed": fewshot_seed, "sampler": "first_n" if first_n else "default"}
    return Task(full.name, full.split, full.source, samples, full.metrics), len(full.samples), fs


def evaluate_task(lm, task: Task, batch_size: int = 16, progress: bool = True) -> tuple[dict, dict, np.ndarray,
                                                                                          np.ndarray]:
    """(metrics, per-sample correctness, loglik [N,K], greedy [N,K]) of `lm` (dense or inside a pruned view)."""
    L = lm.anatomy.num_layers
    sc = score_cloze(lm, task.samples, depths=[L], batch_size=batch_size, progress=progress)
    choices = [s.choices for s in task.samples]
    m, correct = metrics_from(sc.final_loglik, choices, sc.gold, task.metrics)
    return m, correct, sc.final_loglik, sc.final_greedy


def evaluate(lm, tasks, split=None, data_dir=None, limit=None, num_fewshot: int = 0, fewshot_seed=DEFAULT_SEED,
             fewshot_split=None, batch_size: int = 16, progress: bool = True, prepared=None) -> list[TaskEval]:
    """Evaluate `lm` on each task name; all tasks are loaded (and validated) before any compute. `prepared`: the
    `prepare_task` results of `tasks`, when the caller already has them."""
    prepared = prepared or [prepare_task(n, split, data_dir, limit, num_fewshot, fewshot_seed, fewshot_split)
                            for n in tasks]
    out = []
    for task, n_orig, fs in prepared:
        t0 = time.time()
        m, correct, ll, gr = evaluate_task(lm, task, batch_size, progress)
        out.append(TaskEval(task, n_orig, m, ll, gr, correct, num_fewshot, fs, time.time() - t0))
    return out
