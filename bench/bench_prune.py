"""Benchmark: the iterative (IP) trajectory with the prefix-state cache vs naive paths, in one process on one
loaded model. Checks that all give the same removal order and metrics (1e-4), prints a table and appends it to
bench/RESULTS.md.

Paths (--paths, comma-separated):
- naive: the issue's reference, a full recompute with `output_hidden_states` at every step: BI from the returned
  hidden states (the last block's raw output from a hook, since HF's last entry is normed), and the decision lens
  from one forward per (question, option) on context+continuation with `output_hidden_states`, the exact
  full-vocabulary log-softmax taken at the continuation positions of every depth.
- naive-stacked: the same per-option forwards, but the lens takes every depth's continuation rows in one call, so
  the unembedding matrix is read once per forward instead of once per depth: a stronger naive reference.
- noreuse: prunelens' own scoring engine (shared contexts, stacked projection) with the prefix cache off, i.e.
  what the prefix cache alone buys.
- cache: prunelens as shipped (prefix cache: scores of unchanged depths reused, forwards resumed at the cut).

    python bench/bench_prune.py --model gemma-3-270m --task arc_easy --limit 64 --ratio 0.5
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def naive_score(lm, samples, fmt, depths=None, stacked=False, **_):
    """Per-depth cloze scores from per-option forwards with output_hidden_states (no shared context, no reuse)."""
    import numpy as np
    import torch

    from prunelens.engine.encode import default_add_bos, encode_pair
    from prunelens.engine.lens import Lens
    from prunelens.engine.score import Scores
    if fmt != "cloze":
        raise SystemExit("the naive path is written for the cloze format")
    a, tok = lm.anatomy, lm.tokenizer
    L = a.num_layers
    depths = list(range(L + 1)) if depths is None else list(depths)
    lens = Lens(a)
    add_bos = default_add_bos(tok, lm.model.config.model_type)
    out = np.full((len(samples), len(depths), max(s.n_options for s in samples)), np.nan)
    with torch.no_grad():
        for i, s in enumerate(samples):
            for k, (c, t) in enumerate(zip(s.contexts, s.continuations)):
                ctx, cont = encode_pair(tok, c, t, add_bos)
                last = {}
                hk = a.layers[-1].register_forward_hook(lambda _m, _a, o: last.setdefault("y", o[0] if
                                                                                      isinstance(o, tuple) else o))
                try:
                    hs = a.base(input_ids=torch.tensor([ctx + cont], device=lm.device),
                                output_hidden_states=True, use_cache=False).hidden_states
                finally:
                    hk.remove()
                hs = list(hs[:L]) + [last["y"]]             # HF's last entry is normed: use the raw block output
                pos = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
                tgt = torch.tensor(cont)[:, None]
                if stacked:                                 # one unembedding pass for all depths
                    rows = torch.cat([hs[d][0, pos] for d in depths])
                    lp, _ = lens.token_logprobs(rows, tgt.repeat(len(depths), 1))
                    out[i, :, k] = lp.double().view(len(depths), -1).sum(1).cpu().numpy()
                    continue
                for j, d in enumerate(depths):
                    lp, _ = lens.token_logprobs(hs[d][0, pos], tgt)
                    out[i, j, k] = lp.double().sum().item()
    return Scores("cloze", depths, out, None, np.array([s.gold for s in samples]),
                  np.array([s.n_options for s in samples]), [s.id for s in samples])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--format", default="cloze")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--limit", type=int, default=64)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--ratio", type=float, default=None)
    g.add_argument("--steps", type=int, default=None)
    ap.add_argument("--cache-mb", type=float, default=512)
    ap.add_argument("--paths", default="naive,cache", help="comma-separated: naive, naive-stacked, noreuse, cache")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    paths = [p.strip() for p in a.paths.split(",")]
    known = ("naive", "naive-stacked", "noreuse", "cache")
    if "cache" not in paths or any(p not in known for p in paths):
        raise SystemExit(f"--paths: a comma-separated subset of {','.join(known)} that includes cache")
    ratio = a.ratio if a.ratio is not None or a.steps is not None else 0.5

    import prunelens.prune.evaluate as ev
    from prunelens.model import load_model
    from prunelens.prune.run import prune
    from prunelens.tasks import load_task
    task = load_task(a.task, data_dir=a.data_dir, limit=a.limit)
    lm = load_model(a.model)
    runs = {}
    fast_score = ev.score
    scorer = {"naive": naive_score, "naive-stacked": partial(naive_score, stacked=True)}  # others: the engine
    for name in paths:
        out = Path(tempfile.mkdtemp(prefix="bench_prune_"))
        ev.score = scorer.get(name, fast_score)
        t = time.time()
        try:
            runs[name] = (prune(a.model, a.task, "iterative", out, ratio=ratio, steps=a.steps, fmt=a.format, lm=lm,
                                task_obj=task, naive=name != "cache", cache_mb=a.cache_mb, plots=False)[0],
                          time.time() - t)
        finally:
            ev.score = fast_score
        print(f"{name}: {runs[name][1]:.0f} s", flush=True)
    tc, sc = runs["cache"]
    same_order = acc_same = True
    dm_diff = 0.0
    for name, (tn, _) in runs.items():
        same_order &= [s["removed"] for s in tn["steps"]] == [s["removed"] for s in tc["steps"]]
        dm_diff = max([dm_diff] + [abs(x - y) for s1, s2 in zip([tn["dense"]] + tn["steps"],
                                                                [tc["dense"]] + tc["steps"])
                                   for x, y in zip(s1["dm_mean"], s2["dm_mean"])])
        acc_same &= all(s1["acc"] == s2["acc"] for s1, s2 in zip(tn["steps"], tc["steps"]))
    cache = tc["runtime"]["cache"]
    cmd = "python bench/bench_prune.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    lines = ["| path | wall s | speed-up of cache | steps | removal order |", "|---|---:|---:|---:|---|"]
    for name, (t, s) in runs.items():
        order = " ".join(str(st["removed"][-1]) for st in t["steps"])
        lines.append(f"| {name} | {s:.0f} | {s / sc:.2f}x | {len(t['steps'])} | {order} |")
    summary = (f"same removal order: {same_order}; same accuracies: {acc_same}; "
               f"max |DM diff| over steps and depths: {dm_diff:.2e}; hidden-state cache bound {cache['max_mb']} MB, "
               f"peak {cache['peak_mb']} MB, {cache['hits']} hits / {cache['misses']} misses")
    table = "\n".join(lines)
    print(table + "\n" + summary)
    if not a.no_write:
        res = ROOT / "bench" / "RESULTS.md"
        head = "" if res.is_file() else "# Benchmarks\n"
        with open(res, "a") as f:
            f.write(f"{head}\n## Pruning trajectory (issue 3)\n\nCommand: `{cmd}` ({a.model}, {a.task} {a.format}, "
                    f"{len(task.samples)} questions, {len(tc['steps'])} IP steps; "
                    f"{time.strftime('%Y-%m-%d %H:%M')}, 2-core CPU)\n\n{table}\n\n{summary}\n")
    return 0 if same_order and acc_same and dm_diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
