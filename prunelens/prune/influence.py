"""Layer scores on the calibration set, computed from the longest cached prefix of the pruned model.

BI (ShortGPT): BI_l = 1 - mean over every non-padding token of cos(x_l, y_l), x/y the raw input/output of block l,
in float32 (never HF's `hidden_states[-1]`, which is already normed). Pooled over tokens, not per-prompt means.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..engine.capture import _hidden_of, _input_of, capture_residuals, inject_input
from ..engine.lens import Lens
from .cache import PrefixCache, prefix_keys
from ..model.surgery import pruned_view


@torch.no_grad()
def forward_from_prefix(lm, cache: PrefixCache, calib, keep, merges, modules) -> list[torch.Tensor]:
    """Run the pruned model (keep, merges) on every calibration batch, starting each batch at the deepest cached
    state. Fills the cache with per-block cos sums (key ("cos", b, prefix)) and hidden states.
    Returns the final raw residual [B, T, d] of each batch."""
    keys = prefix_keys(keep, merges)
    n = len(keep)
    finals = []
    for b, (ids, mask, pos) in enumerate(calib.batches):
        j, h0 = 0, None
        for jj in range(n, 0, -1):             # deepest start whose state and earlier cos sums are all known
            if all(cache.get(("cos", b, keys[p + 1])) is not None for p in range(jj)):
                h0 = cache.get_state((b, keys[jj]))
                if h0 is not None:
                    j = jj
                    break
        if j == n:
            finals.append(h0)
            continue
        m = mask.bool()
        out: dict[int, torch.Tensor] = {}
        with pruned_view(lm, keep[j:], {i: modules[i] for i in keep[j:] if i in modules}):
            layers = list(lm.anatomy.layers)
            handles, xin = [], {}

            def pre(p):
                def hook(_mod, args, kwargs):
                    xin[p] = _input_of(args, kwargs)
                return hook

            def post(p):
                def hook(_mod, _args, o):
                    y = _hidden_of(o)
                    x = xin.pop(p)
                    cos = F.cosine_similarity(x.float(), y.float(), dim=-1)       # [B, T]
                    cache.put(("cos", b, keys[j + p + 1]), (float(cos[m].double().sum()), int(m.sum())))
                    out[p] = y
                    cache.put_state((b, keys[j + p + 1]), y.detach().clone())
                return hook

            try:
                if h0 is not None:
                    handles.append(layers[0].register_forward_pre_hook(inject_input(lambda: h0), with_kwargs=True))
                else:
                    handles.append(layers[0].register_forward_pre_hook(
                        lambda _m, a, k: cache.put_state((b, keys[0]), _input_of(a, k).detach().clone()),
                        with_kwargs=True))
                for p, layer in enumerate(layers):
                    handles.append(layer.register_forward_pre_hook(pre(p), with_kwargs=True))
                    handles.append(layer.register_forward_hook(post(p)))
                lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
            finally:
                for h in handles:
                    h.remove()
        finals.append(out[len(layers) - 1])
    return finals


def block_influence(lm, cache, calib, keep, merges=None, modules=None) -> dict[int, float]:
    """{original id: BI} for every kept block of the pruned model."""
    merges, modules = merges or {}, modules or {}
    keys = prefix_keys(keep, merges)
    if any(cache.get(("cos", b, keys[p + 1])) is None for b in range(len(calib.batches)) for p in range(len(keep))):
        if not cache.enabled:
            return block_influence_naive(lm, calib, keep, modules)
        forward_from_prefix(lm, cache, calib, keep, merges, modules)
    out = {}
    for p, i in enumerate(keep):
        s = [cache.get(("cos", b, keys[p + 1])) for b in range(len(calib.batches))]
        out[i] = 1.0 - sum(x for x, _ in s) / sum(c for _, c in s)
    return out


@torch.no_grad()
def block_influence_naive(lm, calib, keep, modules=None) -> dict[int, float]:
    """The reference path: a full recompute with `output_hidden_states` each time (its last entry is normed, so the
    last block's raw output comes from a hook instead)."""
    sums, count = torch.zeros(len(keep), dtype=torch.float64), 0
    with pruned_view(lm, keep, {i: m for i, m in (modules or {}).items() if i in keep}):
        for ids, mask, pos in calib.batches:
            last = {}
            h = lm.anatomy.layers[-1].register_forward_hook(lambda _m, _a, o: last.setdefault("y", _hidden_of(o)))
            try:
                hs = lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False,
                                     output_hidden_states=True).hidden_states
            finally:
                h.remove()
            outs = list(hs[1:len(keep)]) + [last["y"]]
            m = mask.bool()
            for p in range(len(keep)):
                sums[p] += F.cosine_similarity(hs[p].float(), outs[p].float(), dim=-1)[m].double().sum()
            count += int(m.sum())
    return {i: float(1.0 - sums[p] / count) for p, i in enumerate(keep)}


def _nll_of(lens, final, ids, mask) -> tuple[float, int]:
    """Next-token NLL sum and count over positions whose token and next token are both real."""
    valid = (mask[:, :-1] * mask[:, 1:]).bool()
    rows = final[:, :-1][valid]
    tgt = ids[:, 1:][valid][:, None]
    lp, _ = lens.token_logprobs(rows, tgt)
    return float(-lp.double().sum()), int(valid.sum())


def calib_nll(lm, cache, calib, keep, merges=None, modules=None) -> float:
    """Mean next-token NLL of the pruned model on the calibration prompts (SLEB, Shortened-LLaMA PPL)."""
    merges, modules = merges or {}, modules or {}
    key = prefix_keys(keep, merges)[-1]
    got = cache.get(("nll", key))
    if got is None:
        lens = Lens(lm.anatomy)
        finals = forward_from_prefix(lm, cache, calib, keep, merges, modules)
        parts = [_nll_of(lens, f, ids, mask) for f, (ids, mask, _) in zip(finals, calib.batches)]
        got = sum(s for s, _ in parts) / sum(c for _, c in parts)
        cache.put(("nll", key), got)
    return got


@torch.no_grad()
def last_token_states(lm, calib) -> torch.Tensor:
    """Dense residual at the last token of every prompt, all depths: [Ncalib, L+1, d] fp32."""
    out = []
    for ids, mask, pos in calib.batches:
        last = torch.full((ids.shape[0], 1), ids.shape[1] - 1, device=ids.device)
        with capture_residuals(lm.anatomy, last) as cap:
            lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        out.append(cap.stacked()[:, :, 0].float())
    return torch.cat(out)


def angular_distances(states: torch.Tensor, n: int) -> dict[int, float]:
    """Gromov et al.: d(l, n) = mean_i arccos(cos(h_l, h_{l+n})) / pi for blocks l..l+n-1, at the last token."""
    L = states.shape[1] - 1
    out = {}
    for l in range(L - n + 1):
        cos = F.cosine_similarity(states[:, l], states[:, l + n], dim=-1).clamp(-1, 1)
        out[l] = float(torch.arccos(cos).mean() / math.pi)
    return out


def angular_block(states: torch.Tensor, n: int) -> list[int]:
    """Gromov et al.: the n contiguous blocks l..l+n-1 whose input and output (last token) are closest in angle (lowest
    l on ties). `states` are raw residuals [N, L+1, d]: the last depth is taken before the final norm (Gromov's code
    reads HF's hidden_states, whose last entry is normed: only blocks ending at the last layer can differ)."""
    d = angular_distances(states, n)
    l = min(d, key=lambda i: (d[i], i))
    return list(range(l, l + n))


def taylor_importance(lm, calib) -> dict[int, float]:
    """Shortened LLaMA Taylor+: block importance = sum over its weights of |w * dL/dw|, L = calibration NLL."""
    layers = list(lm.anatomy.layers)
    params = [list(layer.parameters()) for layer in layers]
    for ps in params:
        for p in ps:
            p.requires_grad_(True)
            p.grad = None
    lens = Lens(lm.anatomy)
    try:
        with torch.enable_grad():
            total = sum(int((m[:, :-1] * m[:, 1:]).sum()) for _, m, _ in calib.batches)
            for ids, mask, pos in calib.batches:
                h = lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos,
                                    use_cache=False).last_hidden_state
                valid = (mask[:, :-1] * mask[:, 1:]).bool()
                z = lens._finish(h[:, :-1][valid].float() @ lens.weight.float().T)
                loss = F.cross_entropy(z, ids[:, 1:][valid], reduction="sum") / total
                loss.backward()
        return {i: float(sum((p.detach() * p.grad).abs().sum() for p in ps if p.grad is not None))
                for i, ps in enumerate(params)}
    finally:
        for ps in params:
            for p in ps:
                p.requires_grad_(False)
                p.grad = None
