"""prunelens eval vs lm-eval-harness: same model (the in-memory fp32 Gemma-3-270M from prunelens' loader), same
data (local files, exposed to lm-eval as custom tasks by tests/lmeval_tasks/build.py), same machine, one command:

    python bench/bench_eval.py --data-dir ../shared/data --limit 200 --batch-size 16 [--threads 2] [--out bench/out]

Each side runs in its own fresh process (sequentially) and reports the wall time of the evaluation (model loading
excluded, it is identical), the process's total time, and its peak resident memory (ru_maxrss). The two sides'
per-sample log-likelihoods and acc/acc_norm are compared at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {"arc_easy": "pl_arc_easy", "hellaswag": "pl_hellaswag"}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def exact_gflop(lm, samples) -> dict:
    """Matmul GFLOPs of the two methods on these prompts (2 FLOP per weight per token; attention scores left out):
    lm-eval runs context+continuation[:-1] of every option and projects every position onto the vocabulary;
    prunelens runs each context once, the continuations on its cache, and projects only the positions that
    predict a continuation token (the context's last one once per context)."""
    from prunelens.engine.encode import encode_pair
    cfg = lm.model.config.get_text_config()
    n_all = sum(p.numel() for p in lm.model.parameters())
    head = lm.anatomy.unembed.weight.numel()
    body = n_all - head - (0 if cfg.tie_word_embeddings else head)       # embeddings are a lookup, not a matmul
    ours = theirs = 0.0
    for s in samples:
        ctxs = set()
        for c, x in zip(s.contexts, s.continuations):
            ctx, cont = encode_pair(lm.tokenizer, c, x, True)
            theirs += (len(ctx) + len(cont) - 1) * (body + head)
            ours += len(cont) * body + (len(cont) - 1) * head
            if tuple(ctx) not in ctxs:
                ctxs.add(tuple(ctx))
                ours += len(ctx) * body + head
    return {"prunelens": 2 * ours / 1e9, "lm-eval": 2 * theirs / 1e9}


def side(a) -> dict:
    import torch
    torch.set_num_threads(a.threads)
    from prunelens.model import load_model
    t_start = time.time()
    lm = load_model(a.model, device="cpu", dtype="float32", log=lambda *_: None)
    mem_loaded = _peak_mb()
    tasks = [t for t in a.tasks.split(",")]
    t0 = time.time()
    per = {}
    if a.side == "prunelens":
        from prunelens.evaluate import evaluate
        for t in tasks:                      # one task at a time, so that each gets its own time
            t1 = time.time()
            te, = evaluate(lm, [t], data_dir=a.data_dir, limit=a.limit, batch_size=a.batch_size, progress=False)
            per[t] = {"ll": [[float(x) for x in te.loglik[i, :s.n_options]] for i, s in enumerate(te.task.samples)],
                      "acc": te.metrics["acc"], "acc_norm": te.metrics["acc_norm"], "seconds": time.time() - t1,
                      "gflop_exact": exact_gflop(lm, te.task.samples)}
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from lmeval_tasks.build import build
        from lmeval_tasks.harness import run_lm_eval
        inc = build(a.data_dir, Path(a.out) / "lmeval_tasks")
        t0 = time.time()
        for t in tasks:
            t1 = time.time()
            docs, res = run_lm_eval(lm, [PAIRS[t]], inc, limit=a.limit, batch_size=a.batch_size)
            per[t] = {"ll": [[r[0] for r in d] for d in docs[PAIRS[t]]], "acc": res[PAIRS[t]]["acc,none"],
                      "acc_norm": res[PAIRS[t]]["acc_norm,none"], "seconds": time.time() - t1}
    t_eval = time.time() - t0
    return {"side": a.side, "eval_seconds": round(t_eval, 1), "process_seconds": round(time.time() - t_start, 1),
            "peak_rss_mb": round(_peak_mb(), 0), "rss_after_load_mb": round(mem_loaded, 0), "tasks": per}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--side", choices=["prunelens", "lm-eval"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        print("RESULT " + json.dumps(side(a)))
        return 0
    Path(a.out).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = {}
    for s in ("prunelens", "lm-eval"):
        t0 = time.time()
        p = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--side", s], env=env, capture_output=True,
                           text=True)
        line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
        if p.returncode or not line:
            sys.stderr.write(p.stderr[-4000:])
            raise SystemExit(f"{s} side failed (exit {p.returncode})")
        res[s] = json.loads(line[-1][7:])
        print(f"{s}: eval {res[s]['eval_seconds']} s, peak RSS {res[s]['peak_rss_mb']:.0f} MB "
              f"(subprocess {time.time() - t0:.0f} s)", flush=True)
    ours, theirs = res["prunelens"], res["lm-eval"]
    rows = ["| task | n | prunelens acc / acc_norm | lm-eval acc / acc_norm | max abs Δ loglik |",
            "|---|---:|---|---|---:|"]
    for t in ours["tasks"]:
        o, l = ours["tasks"][t], theirs["tasks"][t]
        d = max(abs(x - y) for a_, b_ in zip(o["ll"], l["ll"]) for x, y in zip(a_, b_))
        rows.append(f"| {t} | {len(o['ll'])} | {o['acc']:.4f} / {o['acc_norm']:.4f} | {l['acc']:.4f} / "
                    f"{l['acc_norm']:.4f} | {d:.1e} |")
    speed = theirs["eval_seconds"] / ours["eval_seconds"]
    rows += ["", "| task | prunelens s | lm-eval s | speed-up | matmul GFLOP prunelens / lm-eval | FLOP ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    for t in ours["tasks"]:
        o, l = ours["tasks"][t], theirs["tasks"][t]
        g = o["gflop_exact"]
        rows.append(f"| {t} | {o['seconds']:.1f} | {l['seconds']:.1f} | {l['seconds'] / o['seconds']:.2f}x | "
                    f"{g['prunelens']:.0f} / {g['lm-eval']:.0f} | {g['lm-eval'] / g['prunelens']:.2f}x |")
    g_o = sum(ours["tasks"][t]["gflop_exact"]["prunelens"] for t in ours["tasks"])
    g_l = sum(ours["tasks"][t]["gflop_exact"]["lm-eval"] for t in ours["tasks"])
    rows += ["", "| side | eval time (s) | peak RSS (MB) | matmul GFLOP/s |", "|---|---:|---:|---:|",
             f"| prunelens eval | {ours['eval_seconds']} | {ours['peak_rss_mb']:.0f} | "
             f"{g_o / ours['eval_seconds']:.1f} |",
             f"| lm-eval-harness 0.4.13 (HFLM) | {theirs['eval_seconds']} | {theirs['peak_rss_mb']:.0f} | "
             f"{g_l / theirs['eval_seconds']:.1f} |",
             "", f"speed-up: {speed:.2f}x (FLOP ratio of the two methods: {g_l / g_o:.2f}x)"]
    print("\n".join(rows))
    (Path(a.out) / "bench_eval.json").write_text(json.dumps({"args": vars(a), **res, "speedup": speed}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
