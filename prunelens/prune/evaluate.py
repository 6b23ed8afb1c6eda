"""Re-measure a pruned state with the decision lens, reusing every depth whose prefix of blocks is unchanged.

Depth d of a pruned model depends only on its first d kept blocks, so option scores [N, K] at depth d are cached
under that prefix (cache.py) and only deeper depths are scored again (`score(..., depths=missing)`). In cloze
format the scoring forward also starts at the deepest cached residual at or before the first missing depth, not at
the embeddings (engine.score.Resume); residuals of the new depths are kept for the next step, within the cache's
byte bound.
"""
from __future__ import annotations

import math

import numpy as np

from ..engine.score import Resume, score
from ..metrics import (decision_margin, depth_summary, phases, predictions, transition_estimators, transition_point,
                       transition_point_bootstrap)
from .cache import _nbytes, prefix_keys
from ..model.surgery import pruned_view


def keep_of(removed, L: int) -> list[int]:
    gone = set(removed)
    return [i for i in range(L) if i not in gone]


def option_scores(ctx, keep, merges) -> np.ndarray:
    """Raw per-depth option scores [N, D, Kmax] of the pruned model (cached per depth prefix)."""
    keys = prefix_keys(keep, merges)
    rows = [ctx.cache.get(("eval", k)) for k in keys]
    missing = [d for d, r in enumerate(rows) if r is None]
    if missing:
        mods = ctx.bank.modules({i: r for i, r in merges.items() if i in keep})
        kw = {}
        if ctx.fmt == "cloze" and ctx.cache.enabled:
            start, states = 0, None
            for p in range(min(missing[0], len(keep) - 1), 0, -1):     # at least one block must run
                states = ctx.cache.get_state(("eval-h", keys[p]), count=False)
                if states is not None:
                    start = p
                    ctx.cache.hits += 1
                    ctx.cache.resumed += 1
                    break
            saver = _DepthSaver(ctx.cache.max_bytes)
            kw["resume"] = Resume(start, states.__getitem__ if states is not None else None,
                                  range(start + 1, len(keep) + 1), saver.put)
        with pruned_view(ctx.lm, keep, mods):
            # a bar for the dense pass (the long first pass); the pruning steps print one line each
            sc = score(ctx.lm, ctx.samples, ctx.fmt, depths=missing, batch_size=ctx.batch_size,
                       progress=ctx.dense is None and len(keep) == ctx.L and not merges, add_bos=ctx.add_bos, **kw)
        if kw:
            # Deepest first, so that under the LRU bound the shallow prefixes (shared by more later states) stay.
            for d in sorted(saver.saved, reverse=True):
                ctx.cache.put_state(("eval-h", keys[d]), saver.saved[d])
        for j, d in enumerate(missing):
            rows[d] = sc.scores[:, j].copy()
            ctx.cache.put(("eval", keys[d]), rows[d])
    return np.stack(rows, axis=1)


class _DepthSaver:
    """Collects {depth: {call: residual}} during one scoring pass within `max_bytes`: when full, the deepest depth
    is dropped whole (a depth missing any call is useless), so what is kept is always the shallowest."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.nbytes = max_bytes, 0
        self.saved: dict[int, dict[int, object]] = {}
        self.dropped: set[int] = set()

    def put(self, depth: int, call: int, h) -> None:
        if depth in self.dropped:
            return
        self.saved.setdefault(depth, {})[call] = h
        self.nbytes += _nbytes(h)
        while self.nbytes > self.max_bytes and self.saved:
            d = max(self.saved)
            self.nbytes -= _nbytes(self.saved.pop(d))
            self.dropped.add(d)


def summarize(ctx, raw: np.ndarray) -> dict:
    """The per-step record of the decision lens from raw scores [N, D, K] (same numbers as analyze.measure)."""
    s = raw / ctx.char_len[:, None, :] if ctx.score_kind == "norm" else raw
    rows = depth_summary(s, ctx.gold, ctx.n_options, margin=ctx.margin, n_boot=ctx.n_boot, seed=ctx.seed)
    dm = np.array([r["dm_mean"] for r in rows])
    tp = transition_point(dm, ctx.tau)
    ph = phases(tp, len(rows))
    f = rows[-1]
    rec = {"acc": f["acc"], "acc_ci": f["acc_ci"], "dm_final": f["dm_mean"], "dm_final_ci": f["dm_ci"],
           "transition_point": tp, "transition_relative": ph["transition_relative"],
           "dm_mean": [r["dm_mean"] for r in rows], "dm_ci": [r["dm_ci"] for r in rows],
           "acc_by_depth": [r["acc"] for r in rows],
           "option_frequency": f["option_frequency"], "kl_to_labels": f["kl_to_labels"],
           "of_entropy": f["entropy"], "top_option_share": f["top_option_share"],
           "kl_by_depth": [r["kl_to_labels"] for r in rows],
           # per-depth OF of the pruned model and the gold-label shares it is compared with (report's OF figures)
           "of_by_depth": [r["option_frequency"] for r in rows],
           "label_distribution": (np.bincount(np.asarray(ctx.gold, int), minlength=len(f["option_frequency"]))
                                  / max(len(ctx.gold), 1)).tolist(),
           **transition_point_bootstrap(decision_margin(s, ctx.gold, ctx.n_options, ctx.margin), ctx.tau, ctx.n_boot,
                                        seed=ctx.seed)}
    if len(rows) >= 3:      # the TP beside the decision depths and the accuracy change-point, each with its verdict
        rec["estimators"] = transition_estimators(s, ctx.gold, ctx.n_options, margin=ctx.margin, tau=ctx.tau,
                                                  n_boot=ctx.n_boot, seed=ctx.seed)
    if ctx.fmt == "cloze":
        for kind, arr in (("acc_raw", raw), ("acc_norm", raw / ctx.char_len[:, None, :])):
            rec[kind] = float((predictions(arr[:, -1:], ctx.n_options)[:, 0] == ctx.gold).mean())
    return rec


def measure_state(ctx, removed, merges=None) -> dict:
    merges = {int(i): r for i, r in (merges or {}).items()}
    keep = keep_of(removed, ctx.L)
    rec = {"removed": [int(i) for i in removed], "n_removed": len(removed), "ratio": len(removed) / ctx.L,
           "kept": keep}
    if merges:
        rec["merges"] = {str(i): [[int(j), float(c)] for j, c in r] for i, r in sorted(merges.items())}
    rec.update(summarize(ctx, option_scores(ctx, keep, merges)))
    return rec


def n_to_remove(L: int, ratio: float | None, steps: int | None) -> int:
    """Validated number of blocks to remove: ceil(ratio * L) (tolerant to float noise) or `steps`."""
    if (ratio is None) == (steps is None):
        raise ValueError("give exactly one of --ratio and --remove-count")
    if ratio is not None:
        if not 0 < ratio < 1:
            raise ValueError(f"--ratio must lie strictly between 0 and 1, got {ratio}")
        n = math.ceil(ratio * L - 1e-9)
    else:
        n = steps
        if n < 1:
            raise ValueError(f"--remove-count must be >= 1, got {n}")
    if n >= L:
        raise ValueError(f"removing {n} of {L} layers would remove every layer")
    return n
