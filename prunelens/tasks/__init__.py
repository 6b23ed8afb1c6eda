"""The task layer: benchmarks in, validated `MCSample`s out.

    task = load_task("arc_easy", split="validation", limit=100)
    task.samples[0].contexts, task.samples[0].continuations, task.metrics

Names: arc_easy, arc_challenge, hellaswag, piqa, winogrande, boolq, mmlu, openbookqa (see `task_names()`).
MMLU takes every subject ("mmlu") or one subject by lm-eval's name "mmlu_anatomy" (the one documented syntax; in a
comma list, "mmlu_anatomy,mmlu_virology"). "mmlu:anatomy,virology" (several subjects pooled into one task) and
lm-eval 0.3's "hendrycksTest-anatomy" are accepted too. Every form goes through `resolve_task`, so every spelling of a
subject is one task definition: the same samples, the same name and the same few-shot contexts (MMLU's `dev` shots,
`first_n`). A path ending in .yaml/.yml is a custom task spec (see `custom.py`); a bare .jsonl uses the default
custom spec. Sources, data folders and the `source="auto"` order are described in `sources.py`.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .base import LETTERS, MCSample, TaskError, check_letter_tokens, letter_prompt, samples_from_rows, validate_sample
from .custom import load_custom
from .registry import MMLU_SUBJECTS, TASKS, TaskDef, task_names
from .sources import read_rows

__all__ = ["LETTERS", "MCSample", "Task", "TaskDef", "TaskError", "check_letter_tokens", "letter_prompt",
           "load_task", "task_names", "validate_sample", "MMLU_SUBJECTS", "resolve_task", "canonical_name",
           "split_task_list", "resolve_limit", "is_custom"]


@dataclass
class Task:
    name: str
    split: str
    source: str                       # where the rows came from, e.g. "local:/work/shared/data/arc/ARC-Easy-test.jsonl"
    samples: list[MCSample] = field(repr=False)
    metrics: tuple[str, ...]          # ("acc",) or ("acc", "acc_norm"), as lm-eval reports the task
    variant: str = ""                 # letter controls applied (tasks/controls.py), "" for the task as published

    def __len__(self) -> int:
        return len(self.samples)


def is_custom(name) -> bool:
    """A custom task spec (a .yaml/.yml spec or a bare .jsonl file), not a built-in name."""
    return str(name).endswith((".yaml", ".yml", ".jsonl"))


_SUBJECT_PREFIXES = ("mmlu_", "hendrycksTest-")          # lm-eval 0.4 and lm-eval 0.3 per-subject task names


def resolve_task(name: str) -> tuple[TaskDef, tuple[str, ...]]:
    """The one task-name resolver: (task definition, chosen subsets in canonical order). Every accepted spelling of a
    built-in task lands here, so e.g. "mmlu_anatomy", "mmlu:anatomy" and "hendrycksTest-anatomy" are one task:
    the same rows, the same name ("mmlu:anatomy") and the same few-shot split and sampler."""
    name = str(name).strip()
    base, _, sub = name.partition(":")
    for prefix in _SUBJECT_PREFIXES:
        if base.startswith(prefix) and base[len(prefix):] in MMLU_SUBJECTS and not sub:
            base, sub = "mmlu", base[len(prefix):]
    if base not in TASKS:
        hint = ""
        if base.startswith(_SUBJECT_PREFIXES):
            hint = f" (MMLU subjects: mmlu_<subject> with one of {list(MMLU_SUBJECTS)})"
        raise TaskError(f"unknown task {name!r}; built-in tasks: {task_names()}{hint} (or a .yaml custom task spec)")
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


_parse_name = resolve_task                               # the former private name


def canonical_name(name: str) -> str:
    """The name a task's results carry: "mmlu:anatomy" for every spelling of that subject; custom specs as given."""
    if is_custom(name):
        return str(name)
    td, subsets = resolve_task(name)
    return td.name if not subsets else f"{td.name}:{','.join(subsets)}"


def split_task_list(tasks) -> list[str]:
    """A --tasks value as task names: "arc_easy,mmlu_anatomy,piqa" -> three tasks. "mmlu:anatomy,virology" stays one
    task (the bare subject names after an "mmlu:" item belong to it), so a pooled MMLU subset can be listed too."""
    if not isinstance(tasks, str):
        return [str(t).strip() for t in tasks if str(t).strip()]
    out: list[str] = []
    for item in (t.strip() for t in tasks.split(",")):
        if not item:
            continue
        if (out and ":" in out[-1] and out[-1].partition(":")[0] in TASKS and TASKS[out[-1].partition(":")[0]].subsets
                and item in TASKS[out[-1].partition(":")[0]].subsets and item not in TASKS):
            out[-1] += "," + item
        else:
            out.append(item)
    return out


def resolve_limit(limit, n: int) -> int | None:
    """lm-eval's --limit: an integer N keeps the first N documents; a fraction 0 < x < 1 keeps ceil(x * n) of the
    n documents of the split (lm-eval's `get_sample_size`). None: all."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise TaskError(f"limit must be an integer >= 0 or a fraction 0 < x < 1, got {limit!r}")
    if isinstance(limit, float) and not float(limit).is_integer():
        if not 0 < limit < 1:
            raise TaskError(f"limit must be an integer >= 0 or a fraction 0 < x < 1, got {limit!r}")
        return int(math.ceil(n * limit))
    if limit < 0:
        raise TaskError(f"limit must be an integer >= 0 or a fraction 0 < x < 1, got {limit!r}")
    return int(limit)


def _subset(samples: list, limit: int | None, sample: int | None, seed: int) -> list:
    """First `limit` samples, then a seeded random `sample` of them, kept in their original order."""
    limit = resolve_limit(limit, len(samples))
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 0):
        raise TaskError(f"sample must be a non-negative integer, got {sample!r}")
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
              sample: int | None = None, seed: int = 0, source: str = "auto", letters: str | None = None,
              permute: int | None = None) -> Task:
    """Load a built-in or custom task and validate every row before returning (malformed input -> TaskError).

    split: HF split name (validation/test/train); default: the split lm-eval evaluates (test for ARC, OpenBookQA and
    MMLU, validation otherwise). source: "auto" | "local" | "offline" | "hub" (see sources.py).
    limit: keep the first N samples (a fraction 0 < x < 1: that share of the split, as lm-eval's --limit). sample: then
    keep a random N of them (random.Random(seed)), in file order. Names are resolved by `resolve_task`.
    letters / permute: the letter controls of tasks/controls.py (other option letters; options permuted with a seed),
    applied after the subset is drawn, so a control measures the very questions of the plain run.
    """
    task = _load(name_or_path, split, data_dir, limit, sample, seed, source)
    variant = []
    if permute is not None:
        from .controls import permute_options
        task.samples = permute_options(task.samples, permute)
        variant.append(f"options permuted (seed {permute})")
    if letters:
        from .controls import relabel
        task.samples = relabel(task.samples, letters)
        variant.append(f"letters {letters.strip().upper()}")
    task.variant = "; ".join(variant)
    return task


def _load(name_or_path, split, data_dir, limit, sample, seed, source) -> Task:
    name_or_path = str(name_or_path).strip()
    if is_custom(name_or_path):
        if source not in ("auto", "local"):
            raise TaskError(f"custom tasks are read from their own files; source={source!r} does not apply")
        name, split, where, samples, metrics = load_custom(name_or_path, split)
        return Task(name, split, where, _subset(samples, limit, sample, seed), metrics)

    td, subsets = resolve_task(name_or_path)
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
