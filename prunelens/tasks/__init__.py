"""The task layer: benchmarks in, validated `MCSample`s out.

    task = load_task("arc_easy", split="validation", limit=100)
    task.samples[0].contexts, task.samples[0].continuations, task.metrics

Names: arc_easy, arc_challenge, hellaswag, piqa, winogrande, boolq, mmlu, openbookqa (see `task_names()`).
MMLU takes every subject ("mmlu"), or chosen ones: "mmlu:abstract_algebra,anatomy" (lm-eval's per-subject names such
as "mmlu_anatomy" work too). A path ending in .yaml/.yml is a custom task spec (see `custom.py`); a bare .jsonl uses
the default custom spec. Sources, data folders and the `source="auto"` order are described in `sources.py`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from .base import LETTERS, MCSample, TaskError, check_letter_tokens, letter_prompt, samples_from_rows, validate_sample
from .custom import load_custom
from .registry import MMLU_SUBJECTS, TASKS, TaskDef, task_names
from .sources import read_rows

__all__ = ["LETTERS", "MCSample", "Task", "TaskDef", "TaskError", "check_letter_tokens", "letter_prompt",
           "load_task", "task_names", "validate_sample", "MMLU_SUBJECTS"]


@dataclass
class Task:
    name: str
    split: str
    source: str                       # where the rows came from, e.g. "local:/work/shared/data/arc/ARC-Easy-test.jsonl"
    samples: list[MCSample] = field(repr=False)
    metrics: tuple[str, ...]          # ("acc",) or ("acc", "acc_norm"), as lm-eval reports the task

    def __len__(self) -> int:
        return len(self.samples)


def _parse_name(name: str) -> tuple[TaskDef, tuple[str, ...]]:
    """'mmlu:a,b' / 'mmlu_a' -> (mmlu def, (a, b)); other names -> (def, ())."""
    base, _, sub = name.partition(":")
    if base.startswith("mmlu_") and base[5:] in MMLU_SUBJECTS and not sub:
        base, sub = "mmlu", base[5:]
    if base not in TASKS:
        raise TaskError(f"unknown task {name!r}; built-in tasks: {task_names()} (or a .yaml custom task spec)")
    td = TASKS[base]
    if not sub:
        return td, ()
    if not td.subsets:
        raise TaskError(f"task {base!r} has no subsets; drop ':{sub}'")
    chosen = [s.strip() for s in sub.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in td.subsets]
    if unknown:
        raise TaskError(f"unknown {base} subset(s) {unknown}; available: {list(td.subsets)}")
    return td, tuple(s for s in td.subsets if s in chosen)  # canonical order, so every source agrees


def _subset(samples: list, limit: int | None, sample: int | None, seed: int) -> list:
    """First `limit` samples, then a seeded random `sample` of them, kept in their original order."""
    for what, n in (("limit", limit), ("sample", sample)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise TaskError(f"{what} must be a non-negative integer, got {n!r}")
    if limit is not None:
        samples = samples[:limit]
    if sample is not None and sample > len(samples):
        raise TaskError(f"--sample {sample} > {len(samples)} questions" + (f" (after --limit {limit})" if limit else "")
                        + f"; use at most {len(samples)}")
    if sample is not None and sample < len(samples):
        keep = sorted(random.Random(seed).sample(range(len(samples)), sample))
        samples = [samples[i] for i in keep]
    return samples


def load_task(name_or_path: str, split: str | None = None, data_dir: str | None = None, limit: int | None = None,
              sample: int | None = None, seed: int = 0, source: str = "auto") -> Task:
    """Load a built-in or custom task and validate every row before returning (malformed input -> TaskError).

    split: HF split name (validation/test/train); default: the split lm-eval evaluates (test for ARC, OpenBookQA and
    MMLU, validation otherwise). source: "auto" | "local" | "offline" | "hub" (see sources.py).
    limit: keep the first N samples. sample: then keep a random N of them (random.Random(seed)), in file order.
    """
    name_or_path = str(name_or_path)
    if name_or_path.endswith((".yaml", ".yml", ".jsonl")):
        if source not in ("auto", "local"):
            raise TaskError(f"custom tasks are read from their own files; source={source!r} does not apply")
        name, split, where, samples, metrics = load_custom(name_or_path, split)
        return Task(name, split, where, _subset(samples, limit, sample, seed), metrics)

    td, subsets = _parse_name(name_or_path)
    split = split or td.default_split
    rows, where = read_rows(td, split, data_dir, source, subsets)
    ids = None
    if td.subset_field:  # MMLU: keep the chosen subjects; ids "<subject>/<k>" count within a subject, so they do
        wanted, count, kept, ids = set(subsets or td.subsets), {}, [], []  # not depend on the source or the filter
        for w, row in rows:
            if td.subset_field not in row:
                raise TaskError(f"{w}: missing field {td.subset_field!r}")
            sub = row[td.subset_field]
            k = count[sub] = count.get(sub, -1) + 1
            if sub in wanted:
                kept.append((w, row))
                ids.append(f"{sub}/{k}")
        rows = kept
    samples = samples_from_rows(rows, td.to_sample, ids)
    if not samples:
        raise TaskError(f"{name_or_path} {split}: no rows in {where}")
    name = td.name if not subsets else f"{td.name}:{','.join(subsets)}"
    return Task(name, split, where, _subset(samples, limit, sample, seed), td.metrics)
