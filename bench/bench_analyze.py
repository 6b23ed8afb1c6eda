"""Benchmark of the decision lens (issue 2): `measure` vs a naive reference, in one process.

cloze: prunelens (shared-context KV cache, scored positions only, one stacked full-vocab log-softmax per chunk)
       vs naive (one HF forward per option with output_hidden_states, full-vocab lens at every position of every
       layer, then read the continuation positions). Numbers must be identical (max abs diff printed).
letter: all-depth letter lens vs one plain forward of the same prompts (with all logits, and with logits_to_keep=1).

    python bench/bench_analyze.py --n 100 [--data-dir ../shared/data]

Issue 14 (the lens at the machine's matmul limit), in one process on one loaded model:

    python bench/bench_analyze.py --lens-paths plain,tiled --tasks arc_easy,hellaswag --n 100 --skip-naive \
        --skip-letter [--data-dir ../shared/data]

prints the square fp32 matmul GFLOP/s, the lens's own shape ([rows, d] x [d, V] with its log-sum-exp, argmax and
target pick) through each lens path, then `measure` (cloze, every depth) per task and path, with the largest
per-depth score difference between the paths.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from prunelens.analyze import measure
from prunelens.engine.encode import encode_pair
from prunelens.engine.lens import Lens
from prunelens.engine.score import _left_pad, score_letter
from prunelens.model import load_model
from prunelens.tasks import load_task


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@torch.no_grad()
def naive_cloze(lm, samples) -> np.ndarray:
    model, tok, a = lm.model, lm.tokenizer, lm.anatomy
    L = a.num_layers
    out = np.full((len(samples), L + 1, max(s.n_options for s in samples)), np.nan)
    for i, s in enumerate(samples):
        for k, (c, t) in enumerate(zip(s.contexts, s.continuations)):
            ctx, cont = encode_pair(tok, c, t, True)
            o = model(torch.tensor([ctx + cont]), output_hidden_states=True)
            for d, h in enumerate(o.hidden_states):
                z = o.logits[0] if d == L else model.lm_head(a.final_norm(h[0]))    # full lens, every position
                if a.softcap:
                    z = a.softcap * torch.tanh(z / a.softcap)
                lp = torch.log_softmax(z.float(), -1)
                pos = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
                out[i, d, k] = lp[pos, torch.tensor(cont)].double().sum().item()
    return out


@torch.no_grad()
def plain_forward(lm, samples, batch_size, keep_last: bool):
    tok = lm.tokenizer
    prompts = sorted((tok(s.letter_prompt).input_ids for s in samples), key=len, reverse=True)
    for b in range(0, len(prompts), batch_size):
        ids, mask, pos = _left_pad(prompts[b:b + batch_size], tok.pad_token_id, lm.device)
        kw = {"logits_to_keep": 1} if keep_last else {}
        lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, **kw)


def gflops_square(n: int = 2048, rep: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(timed(torch.mm, a, b)[1] for _ in range(rep))
    return 2 * n ** 3 / best / 1e9


@torch.no_grad()
def real_rows(lm, samples, rows: int) -> torch.Tensor:
    """`rows` real residuals: every position of the tasks' cloze texts at every depth. Random residuals would
    flatter a path that pays for exp's denormal range (their logits span far more than real ones)."""
    from prunelens.engine.capture import capture_residuals
    out, n = [], 0
    for s in samples:
        ids = lm.tokenizer(s.contexts[0] + s.continuations[0], return_tensors="pt").input_ids
        with capture_residuals(lm.anatomy, torch.arange(ids.shape[1])[None]) as cap:
            lm.anatomy.base(input_ids=ids)
        h = cap.stacked()[0].reshape(-1, cap.stacked().shape[-1])             # [(D * T), d]
        out.append(h)
        n += len(h)
        if n >= rows:
            break
    return torch.cat(out)[:rows]


@torch.no_grad()
def gflops_lens(lm, h: torch.Tensor, tiled: bool, rep: int = 3) -> float:
    """The lens's shape on the loaded model: real residual rows through the full-vocabulary log-softmax."""
    d, V = lm.anatomy.unembed.weight.shape[1], lm.anatomy.unembed.weight.shape[0]
    t = torch.randint(0, V, (len(h), 2), generator=torch.Generator().manual_seed(0))
    lens = Lens(lm.anatomy, tiled=tiled)
    lens.token_logprobs(h[:256], t[:256])
    best = min(timed(lens.token_logprobs, h, t)[1] for _ in range(rep))
    return 2 * len(h) * d * V / best / 1e9


def timed(fn, *a, **kw):
    t = time.perf_counter()
    r = fn(*a, **kw)
    return r, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-letter", action="store_true")
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--lens-paths", default=None,
                    help="comma list of lens paths to compare (plain = the untiled engine before issue 14, tiled)")
    ap.add_argument("--tasks", default="arc_easy", help="tasks for the lens-path comparison")
    a = ap.parse_args()
    torch.manual_seed(0)
    lm = load_model(a.model, device="cpu", dtype="float32")
    if a.lens_paths:
        return compare_lens_paths(lm, a)
    task = load_task("arc_easy", split="validation", data_dir=a.data_dir, limit=a.n)
    S = task.samples
    print(f"model gemma-3-270m, arc_easy validation n={len(S)}, threads={torch.get_num_threads()}")

    # letter format: warm up once, then time
    score_letter(lm, S[:4], progress=False)
    _, t_letter = timed(score_letter, lm, S, batch_size=a.batch_size, progress=False)
    _, t_plain = timed(plain_forward, lm, S, a.batch_size, False)
    _, t_plain1 = timed(plain_forward, lm, S, a.batch_size, True)
    print(f"letter all-depth lens {t_letter:.2f}s | plain forward (all logits) {t_plain:.2f}s -> ratio "
          f"{t_letter / t_plain:.2f}x | plain forward (logits_to_keep=1) {t_plain1:.2f}s -> ratio "
          f"{t_letter / t_plain1:.2f}x")

    m, t_ours = timed(measure, lm, S, "cloze", batch_size=a.batch_size, progress=False)
    print(f"cloze prunelens measure (19 depths): {t_ours:.1f}s, peak RSS so far {rss_gb():.2f} GB")
    if not a.skip_naive:
        ref, t_naive = timed(naive_cloze, lm, S)
        diff = np.nanmax(np.abs(ref - m.scores.scores))
        print(f"cloze naive reference: {t_naive:.1f}s -> speed-up {t_naive / t_ours:.1f}x; "
              f"max abs diff of per-depth option scores {diff:.2e}")


def compare_lens_paths(lm, a):
    import os
    paths = a.lens_paths.split(",")
    print(f"model {a.model}, threads={torch.get_num_threads()}")
    # The square matmul before and after the lens shapes, best of each: this VM's throughput drifts by 10-20%
    # between minutes, and the ratio must not flatter the lens by catching the square matmul in a slow minute.
    h = real_rows(lm, load_task("hellaswag", split="validation", data_dir=a.data_dir, limit=64).samples, 4096)
    sq0 = gflops_square()
    lens_g = {p: gflops_lens(lm, h, p == "tiled") for p in paths}
    sq = max(sq0, gflops_square())
    print(f"square fp32 matmul 2048^3: {sq:.1f} GFLOP/s (best of before {sq0:.1f} and after the lens shapes)")
    for p, g in lens_g.items():
        print(f"lens shape, {p}: {g:.1f} GFLOP/s = {g / sq:.0%} of the square matmul", flush=True)
    for task_name in a.tasks.split(","):
        split = "validation"
        S = load_task(task_name, split=split, data_dir=a.data_dir, sample=a.n, seed=0).samples
        res = {}
        for p in paths:
            os.environ["PRUNELENS_LENS"] = p              # read by every Lens the engine builds
            m, t = timed(measure, lm, S, "cloze", batch_size=a.batch_size, progress=False)
            res[p] = (m.scores, t)
            print(f"{task_name} n={len(S)} {p}: measure {t:.1f}s, peak RSS so far {rss_gb():.2f} GB", flush=True)
        os.environ.pop("PRUNELENS_LENS", None)
        base = res[paths[0]]
        for p in paths[1:]:
            diff = max(np.nanmax(np.abs(res[p][0].scores - base[0].scores)),
                       np.nanmax(np.abs(res[p][0].norm - base[0].norm)))
            same = all((res[p][0].final_greedy == base[0].final_greedy).ravel())
            print(f"{task_name}: {p} vs {paths[0]}: {base[1] / res[p][1]:.2f}x, max per-depth score diff "
                  f"{diff:.2e}, is_greedy equal: {same}")


if __name__ == "__main__":
    main()
