"""Verify a plan's recommended set on questions it was not chosen on.

`--verify` measures the set on the planning questions, where the single-layer effects that ordered the layers were
measured: optimistic by construction (a layer that looked harmless there partly by chance is in the set). The
held-out check draws other questions of the same split (a seeded sample of those not planned on) and measures the
dense model and the model without the set on them, paired. Two final-depth passes: cheap beside the plan."""
from __future__ import annotations

import random

from ..analyses.ablation import final_outcome, paired
from ..engine.prefix import DensePrefix
from ..engine.score import score
from ..fingerprint import samples_digest
from ..metrics.chance import chance_levels
from ..metrics.bootstrap import bootstrap_mean_ci


def holdout_samples(task_kw: dict, planned_ids, n: int, seed: int = 0, task: str = "arc_easy") -> list:
    """n questions of the planning split that are not among `planned_ids`, a seeded sample in split order.
    Raises ValueError (before any model work) when the split has fewer than n others."""
    from ..analyses.run import _task
    kw = {k: v for k, v in (task_kw or {}).items() if k not in ("sample", "limit", "seed")}
    every = _task(task, **kw).samples                     # the whole split: held-out questions may lie past --limit
    planned = set(planned_ids)
    rest = [s for s in every if s.id not in planned]
    if n > len(rest):
        raise ValueError(f"--verify-holdout {n}: the split has only {len(rest)} questions besides the {len(planned)} "
                         f"planned on")
    # a stream of its own (not `seed`'s): with seed 0 the planning sample itself came from Random(0)
    keep = sorted(random.Random(f"prunelens-holdout-{seed}").sample(range(len(rest)), n))
    return [rest[i] for i in keep]


def verify_holdout(lm, samples, fmt: str, removed, *, score_kind="raw", margin="logit", batch_size=16,
                   n_boot=1000, seed=0) -> dict:
    """Dense and pruned (without `removed`) on `samples`: accuracies with CIs and the paired change."""
    from .run import _score_without
    L = lm.anatomy.num_layers
    # the plan's own passes: the dense one stores its residual, the pruned one starts at the first removed layer
    prefix = DensePrefix(fmt, depths={DensePrefix.start(removed, L)})
    kw = {"resume": r} if (r := prefix.saver(L)) is not None else {}
    dense = final_outcome(score(lm, samples, fmt, depths=[L], batch_size=batch_size, progress=False, **kw),
                          score_kind, margin)
    got = (_score_without(lm, samples, fmt, sorted(removed), prefix, score_kind, margin, batch_size) if removed
           else dense)
    ci = lambda x: [float(v) for v in bootstrap_mean_ci(x[:, 0], n_boot, seed=seed)]                 # noqa: E731
    return {"n": len(samples), "samples_digest": samples_digest(samples), "removed": sorted(int(i) for i in removed),
            "dense_acc": float(dense[:, 0].mean()), "dense_acc_ci": ci(dense), "acc": float(got[:, 0].mean()),
            "acc_ci": ci(got), "dm": float(got[:, 1].mean()), **paired(dense, got, n_boot, seed),
            "chance_levels": chance_levels([s.gold for s in samples], [s.n_options for s in samples])}


def add_to_plan(run_dir, lm, n: int, *, task=None, data_dir=None, batch_size=16, log=print) -> dict:
    """Add the held-out check to a finished plan (plan.json, plan.md rewritten atomically; nothing else is run):
    its questions are reloaded (`data_dir`; `task`: the spec path of a custom task, whose plan stores only its name)
    and must match the digest it stored, its model must be `lm`."""
    from pathlib import Path

    from ..results import atomic_write_text, read_json, write_json
    from .run import summary_md
    d = Path(run_dir)
    p = read_json(d / "plan.json")
    if p.get("num_layers") != lm.anatomy.num_layers or Path(str(p.get("model"))).name != Path(lm.name).name:
        raise ValueError(f"{d}: a plan of {p.get('model')} ({p.get('num_layers')} layers), not of {lm.name}")
    cfg = p.get("config") or {}
    kw = {"split": p.get("split"), "data_dir": data_dir, "limit": cfg.get("limit"), "sample": cfg.get("sample"),
          "seed": cfg.get("seed", 0), **{k: cfg[k] for k in ("letters", "permute") if cfg.get(k) is not None}}
    from ..analyses.run import _task
    task = task or p["task"]
    t = _task(task, **kw)
    if samples_digest(t.samples) != (p.get("fingerprint") or {}).get("samples"):
        raise ValueError(f"{d}: the questions reloaded from {data_dir} are not the ones this plan was made on")
    held = holdout_samples(kw, [s.id for s in t.samples], n, kw["seed"], task)
    from ..tasks.limits import check_lengths
    check_lengths(lm, held, p["format"], what=f"{task} (held-out questions)")
    log(f"plan {d}: the recommended set {p['recommended']['removed']} on {n} held-out questions ...")
    p["verify_holdout"] = verify_holdout(lm, held, p["format"], p["recommended"]["removed"],
                                         score_kind=p.get("score_kind", "raw"), margin=p.get("margin", "logit"),
                                         batch_size=batch_size, n_boot=p.get("n_boot", 1000), seed=p.get("seed", 0))
    write_json(d / "plan.json", p)
    atomic_write_text(d / "plan.md", summary_md(p))
    return p
