"""Run lm-eval-harness on an in-memory prunelens model (the same fp32 weights prunelens scores with).

    per_doc, metrics = run_lm_eval(lm, ["pl_arc_easy"], include_path, limit=50)
    per_doc["pl_arc_easy"][i] == [(loglik, is_greedy) per option] of document i; metrics["pl_arc_easy"]["acc,none"]

softmax_dtype="float64" makes lm-eval take its log-softmax in float64. Its default (float32 over Gemma's 262k
vocabulary) is off by ~3e-5 per token against a float64 reference (1.3e-3 on a 40-token PIQA answer), while
prunelens' lens log-softmax stays within ~2e-5 of float64 for the whole answer.
"""
from __future__ import annotations

import os


def run_lm_eval(lm, tasks, include_path, limit=None, batch_size=8, num_fewshot=None, fewshot_seed=1234,
                softmax_dtype=None, **hflm_kw):
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, softmax_dtype=softmax_dtype,
                 **hflm_kw)
    tm = TaskManager(include_path=str(include_path))
    out = lm_eval.simple_evaluate(model=model, tasks=list(tasks), task_manager=tm,
                                  log_samples=True, limit=limit, num_fewshot=num_fewshot,
                                  fewshot_random_seed=fewshot_seed, bootstrap_iters=1000)
    per_doc = {}
    for t in tasks:
        docs = sorted(out["samples"][t], key=lambda s: s["doc_id"])
        per_doc[t] = [[(float(r[0]), bool(r[1])) for r in s["filtered_resps"]] for s in docs]
        per_doc[t + "/contexts"] = [[a[0] for a in s["arguments"]] for s in docs]
    return per_doc, out["results"]
