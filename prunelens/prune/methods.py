"""Every pruning method as one function `fn(ctx, st) -> proposal | None`.

`st` is the current state {"removed": [ids in order], "merges": {id: recipe}, "method_state": ...}; a proposal is
{"removed", "merges", "scores": {original id: score of each candidate}, "method_state"}; None stops the trajectory.
Methods are deterministic functions of (ctx, st), which is what makes a killed run resume identically.
"""
from __future__ import annotations

import numpy as np
import torch

from .evaluate import keep_of
from .influence import angular_block, angular_distances, block_influence, calib_nll, forward_from_prefix, \
    last_token_states, taylor_importance
from .merge import laco_recipe, mka_recipe


def _merges(st) -> dict:
    return {int(i): [(int(j), float(c)) for j, c in r] for i, r in (st.get("merges") or {}).items()}


def _bi(ctx, st) -> dict[int, float]:
    keep, merges = keep_of(st["removed"], ctx.L), _merges(st)
    return block_influence(ctx.lm, ctx.cache, ctx.calib, keep, merges, ctx.bank.modules(merges))


def _argmin(scores: dict, allowed) -> int | None:
    c = [i for i in scores if i in allowed]
    return min(c, key=lambda i: (scores[i], i)) if c else None


def _step(st, c, scores, **kw):
    return {"removed": list(st["removed"]) + [c], "merges": _merges(st), "scores": scores, **kw}


def _heuristic_allowed(ctx, keep):
    """Shortened LLaMA '+heuristic': never prune the first 4 and the last 2 blocks (original ids)."""
    if not ctx.params.get("heuristic"):
        return set(keep)
    return {i for i in keep if 4 <= i < ctx.L - 2}


def iterative(ctx, st):
    """The paper's IP: BI of the current pruned model, remove the argmin (SKIP-Prun lives in trajectory.py)."""
    bi = _bi(ctx, st)
    c = _argmin(bi, set(bi))
    return _step(st, c, bi)


def transition_aware(ctx, st):
    """Protect the dense model's Silent Phase; remove Decisive-phase blocks (ids >= TP) first, by iterative BI.

    Block l maps depth l to l+1, so ids < TP (including TP-1, which makes the crossing) build the Silent Phase."""
    tp = ctx.dense["transition_point"]
    bi = _bi(ctx, st)
    decisive = {i for i in bi if tp is not None and i >= tp}
    c = _argmin(bi, decisive) if decisive else _argmin(bi, set(bi))
    return _step(st, c, bi, phase="decisive" if decisive else "silent")


def shortgpt(ctx, st):
    if "dense_bi" not in ctx.memo:
        ctx.memo["dense_bi"] = _bi(ctx, {"removed": [], "merges": {}})
    keep = set(keep_of(st["removed"], ctx.L))
    bi = {i: v for i, v in ctx.memo["dense_bi"].items() if i in keep}
    return _step(st, _argmin(bi, keep), bi)


def tail(ctx, st):
    keep = keep_of(st["removed"], ctx.L)
    return _step(st, keep[-1], {})


def random_(ctx, st):
    perm = np.random.default_rng(ctx.params["seed_prune"]).permutation(ctx.L).tolist()
    return _step(st, perm[len(st["removed"])], {})


def angular(ctx, st):
    """Gromov et al.: for n blocks, drop the contiguous block l..l+n-1 of the dense model minimising the angular
    distance between its input and output at the last token. Sets at successive n need not be nested."""
    if "last_states" not in ctx.memo:
        ctx.memo["last_states"] = last_token_states(ctx.lm, ctx.calib)
    n = len(st["removed"]) + 1
    return {"removed": angular_block(ctx.memo["last_states"], n), "merges": {},
            "scores": angular_distances(ctx.memo["last_states"], n)}


def sleb(ctx, st):
    """SLEB: try removing each kept block; remove the one whose removal gives the lowest calibration NLL."""
    keep, merges = keep_of(st["removed"], ctx.L), _merges(st)
    scores = {}
    for c in keep:
        if len(keep) == 1:
            break
        k2 = [i for i in keep if i != c]
        m2 = {i: r for i, r in merges.items() if i != c}
        scores[c] = calib_nll(ctx.lm, ctx.cache, ctx.calib, k2, m2, ctx.bank.modules(m2))
    return _step(st, _argmin(scores, set(scores)), scores)


def ppl(ctx, st):
    """Shortened LLaMA PPL criterion: one-shot, block importance = calibration PPL without that block alone."""
    if "dense_ppl" not in ctx.memo:
        keep = list(range(ctx.L))
        ctx.memo["dense_ppl"] = {c: float(np.exp(calib_nll(ctx.lm, ctx.cache, ctx.calib,
                                                           [i for i in keep if i != c])))
                                 for c in keep}
    keep = keep_of(st["removed"], ctx.L)
    allowed = _heuristic_allowed(ctx, keep)
    scores = {i: v for i, v in ctx.memo["dense_ppl"].items() if i in keep}
    c = _argmin(scores, allowed)
    return None if c is None else _step(st, c, scores)


def taylor(ctx, st):
    """Shortened LLaMA Taylor+: one-shot, block importance = sum |w * dNLL/dw| over its weights."""
    if "taylor" not in ctx.memo:
        ctx.memo["taylor"] = taylor_importance(ctx.lm, ctx.calib)
    keep = keep_of(st["removed"], ctx.L)
    scores = {i: v for i, v in ctx.memo["taylor"].items() if i in keep}
    c = _argmin(scores, _heuristic_allowed(ctx, keep))
    return None if c is None else _step(st, c, scores)


def _final_cos(ctx, keep, merges) -> float:
    """Mean over non-padding tokens of cos(final residual of this model, of the dense model)."""
    if "dense_final" not in ctx.memo:
        ctx.memo["dense_final"] = forward_from_prefix(ctx.lm, ctx.cache, ctx.calib, list(range(ctx.L)), {}, {})
    finals = forward_from_prefix(ctx.lm, ctx.cache, ctx.calib, keep, merges, ctx.bank.modules(merges))
    s = n = 0.0
    for f, d, (_, mask, _) in zip(finals, ctx.memo["dense_final"], ctx.calib.batches):
        cos = torch.nn.functional.cosine_similarity(f.float(), d.float(), dim=-1)[mask.bool()]
        s, n = s + float(cos.double().sum()), n + cos.numel()
    return s / n


def laco(ctx, st):
    """LaCo: from the top, merge C consecutive blocks into the first (theta_l + sum (theta_l+k - theta_l)); accept
    when the final representation keeps cosine similarity > T to the dense model, then move down by I, else by 1."""
    C, I, T, lo = ctx.params["laco_c"], ctx.params["laco_i"], ctx.params["laco_t"], ctx.params["laco_lo"]
    keep, merges = keep_of(st["removed"], ctx.L), _merges(st)
    C = min(C, ctx.n_remove - len(st["removed"]) + 1)
    ptr = (st.get("method_state") or {}).get("next", keep[-1])
    scores = {}
    while True:
        below = [p for p, i in enumerate(keep) if i <= ptr]
        if not below:
            return None
        p = min(below[-1], len(keep) - C)
        if p < 0 or keep[p] < lo:
            return None
        slots = keep[p:p + C]
        m2 = {i: r for i, r in merges.items() if i not in slots[1:]}
        m2[slots[0]] = laco_recipe(slots, merges)
        k2 = [i for i in keep if i not in slots[1:]]
        sim = _final_cos(ctx, k2, m2)
        scores[slots[0]] = sim
        if sim > T:
            nxt = keep[p - I] if p - I >= 0 else -1
            return {"removed": list(st["removed"]) + slots[1:], "merges": m2, "scores": scores,
                    "method_state": {"next": nxt}}
        ptr = keep[p - 1] if p >= 1 else -1


def _diffusion_embedding(x: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Diffusion-map coordinates [N, k] of points x [N, d] (Gaussian kernel, median bandwidth, t = 1)."""
    x = x.double()
    d2 = torch.cdist(x, x).pow(2)
    sigma2 = d2[d2 > 0].median() if (d2 > 0).any() else torch.tensor(1.0, dtype=torch.float64)
    K = torch.exp(-d2 / sigma2)
    dinv = K.sum(1).rsqrt()
    evals, evecs = torch.linalg.eigh(dinv[:, None] * K * dinv[None])
    idx = torch.argsort(evals, descending=True)[1:k + 1]            # drop the trivial top eigenvector
    return (dinv[:, None] * evecs[:, idx]) * evals[idx]


def _linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(0), b - b.mean(0)
    hsic = (a.T @ b).pow(2).sum()
    return float(hsic / ((a.T @ a).pow(2).sum().sqrt() * (b.T @ b).pow(2).sum().sqrt()))


@torch.no_grad()
def _pooled_outputs(ctx, keep, merges) -> list[torch.Tensor]:
    """Per kept block, its output mean-pooled over each prompt's real tokens: list of [Ncalib, d]."""
    from ..model.surgery import pruned_view
    feats = [[] for _ in keep]
    with pruned_view(ctx.lm, keep, ctx.bank.modules(merges)):
        for ids, mask, pos in ctx.calib.batches:
            hs = []
            hooks = [layer.register_forward_hook(lambda _m, _a, o: hs.append(o[0] if isinstance(o, tuple) else o))
                     for layer in ctx.lm.anatomy.layers]
            try:
                ctx.lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
            finally:
                for h in hooks:
                    h.remove()
            w = mask.float()[..., None]
            for p, h in enumerate(hs):
                feats[p].append((h.float() * w).sum(1) / w.sum(1))
    return [torch.cat(f) for f in feats]


def mka(ctx, st):
    """MKA (manifold-alignment merging): embed each block's outputs with a diffusion map, score adjacent blocks by
    the similarity of those embeddings (linear CKA, our stand-in for the paper's NPIB), and merge the most similar
    pair into lam * theta_a + (1 - lam) * theta_b for real."""
    keep, merges = keep_of(st["removed"], ctx.L), _merges(st)
    emb = [_diffusion_embedding(f) for f in _pooled_outputs(ctx, keep, merges)]
    scores = {keep[p]: _linear_cka(emb[p], emb[p + 1]) for p in range(len(keep) - 1)}
    a = max(scores, key=lambda i: (scores[i], -i))
    b = keep[keep.index(a) + 1]
    m2 = {i: r for i, r in merges.items() if i != b}
    m2[a] = mka_recipe(a, b, merges, ctx.params["mka_lambda"])
    return {"removed": list(st["removed"]) + [b], "merges": m2, "scores": scores}


METHODS = {"iterative": iterative, "shortgpt": shortgpt, "angular": angular, "sleb": sleb, "ppl": ppl,
           "taylor": taylor, "laco": laco, "mka": mka, "tail": tail, "random": random_,
           "transition-aware": transition_aware}
