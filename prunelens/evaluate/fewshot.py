"""Few-shot contexts built the way lm-eval-harness 0.4 builds them, so K-shot numbers stay comparable.

lm-eval, per task: one `random.Random(fewshot_random_seed)` (default 1234) is consumed in document order; for each
evaluated document it draws `rnd.sample(pool, K)` (K+1 and the evaluated document dropped when the pool is the
evaluated split), and the context becomes
    description + "".join(text_j + " " + answer_j + "\\n\\n" for each shot j) + text(doc)
MMLU uses the `dev` split with the `first_n` sampler (the same first K shots for every question of a subject) and puts
its description before the shots. A shot's text + answer is exactly `contexts[gold] + continuations[gold]` of its
MCSample (also for WinoGrande's partial contexts), so shots are built from the pool split's samples.

The pool split: lm-eval's fewshot split (`train`; `dev` for MMLU) when the data has it, else the given fallback
(validation), recorded in the results config.
"""
from __future__ import annotations

import random
from dataclasses import replace

from ..tasks import MCSample, TaskError, load_task

DEFAULT_SEED = 1234                                   # lm-eval's DEFAULT_OTHER_SEED (fewshot_random_seed)
FIRST_N_TASKS = ("mmlu",)
DELIM = "\n\n"                                        # lm-eval fewshot_delimiter


def _base(task_name: str) -> str:
    """The built-in task a name resolves to (one resolver: "mmlu_anatomy", "mmlu:anatomy" -> "mmlu")."""
    from ..tasks import is_custom, resolve_task
    if is_custom(task_name):
        return str(task_name)
    return resolve_task(task_name)[0].name


def uses_first_n(task_name: str) -> bool:
    """lm-eval's `first_n` sampler (MMLU: the subject's first K dev rows for every question)."""
    return _base(task_name) in FIRST_N_TASKS


def lm_eval_fewshot_split(task_name: str) -> str:
    return "dev" if uses_first_n(task_name) else "train"


def _mmlu_description(s: MCSample) -> str:
    subject = s.meta.get("subject")
    if not subject:
        return ""
    desc = f"The following are multiple choice questions (with answers) about {' '.join(subject.split('_'))}.\n\n"
    return desc if s.contexts[0].startswith(desc) else ""


def shot_text(s: MCSample) -> str:
    """One solved example: question + target delimiter + gold answer + fewshot delimiter (description removed)."""
    text = s.contexts[s.gold] + s.continuations[s.gold]
    return text[len(_mmlu_description(s)):] + DELIM


def with_fewshot(samples: list[MCSample], pool: list[MCSample], k: int, seed: int = DEFAULT_SEED,
                 first_n: bool = False, exclude_self: bool = False) -> list[MCSample]:
    """Prefix every sample's contexts with K shots from `pool`, in document order as lm-eval does."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise TaskError(f"--num-fewshot must be an integer >= 0, got {k!r}")
    if k <= 0:
        return list(samples)
    need = k + 1 if exclude_self and not first_n else k
    if not first_n and len(pool) < need:
        raise TaskError(f"--num-fewshot {k}: the few-shot pool has {len(pool)} examples, {need} are needed")
    rnd = random.Random(seed)
    out = []
    by_subject: dict[str, list[MCSample]] = {}
    for s in pool:
        by_subject.setdefault(s.meta.get("subject", ""), []).append(s)
    for s in samples:
        cands = by_subject.get(s.meta.get("subject", ""), []) if first_n else pool
        if first_n:
            shots = [p for p in cands if not (exclude_self and p.id == s.id)][:k]
        elif exclude_self:
            shots = [p for p in rnd.sample(cands, k + 1) if p.id != s.id][:k]
        else:
            shots = rnd.sample(cands, k)
        if len(shots) < k:
            raise TaskError(f"sample {s.id!r}: {k}-shot needs {k} examples, the few-shot pool has {len(shots)}")
        desc = _mmlu_description(s)
        prefix = desc + "".join(shot_text(p) for p in shots)
        out.append(replace(s, contexts=tuple(prefix + c[len(desc):] for c in s.contexts)))
    return out


def load_pool(task_name: str, eval_split: str, data_dir=None, split: str | None = None,
              fallback: tuple[str, ...] = ("validation", "test")):
    """(pool samples, split used). `split` given: exactly that one; otherwise lm-eval's, then `fallback`."""
    if split:
        tried = [split]
    else:                                  # a split other than the evaluated one first; the evaluated one last
        tried = [lm_eval_fewshot_split(task_name), *[f for f in fallback if f != eval_split], eval_split]
    errors = []
    for sp in dict.fromkeys(tried):
        try:
            return load_task(task_name, split=sp, data_dir=data_dir).samples, sp
        except TaskError as e:
            errors.append(f"{sp}: {e}")
    raise TaskError(f"{task_name}: no few-shot split available ({'; '.join(errors)})")
