"""Noise sensitivity: add eps ~ N(0, (alpha * sigma_l)^2) to h_l during the forward pass, over alpha x depth x seed,
and measure the final DM and accuracy (the paper's Figures 6 and 18).

h_l is the embedding output for l = 0 and the raw output of layer l-1 otherwise (= the input of layer l), before the
final norm for l = L: the same depth convention as the lens. sigma_l is the std of the dense model's h_l over samples, tokens and dims.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analyze import measure
from ..engine.autobatch import is_auto
from ..engine.prefix import DensePrefix
from ..journal import NoJournal


def _hidden(x):
    return x[0] if isinstance(x, (tuple, list)) else x


@contextmanager
def gaussian_noise(anatomy, depth: int, std: float, seed: int):
    """Within the context every forward adds N(0, std^2) noise to h_depth at every token (a fresh draw per call,
    from one generator seeded with `seed`, so a run is reproducible)."""
    layers = list(anatomy.layers)
    if not 0 <= depth <= len(layers):
        raise ValueError(f"depth must lie in 0..{len(layers)}, got {depth}")
    g = torch.Generator(device=anatomy.unembed.weight.device).manual_seed(int(seed))

    def noisy(h):
        return h + std * torch.randn(h.shape, generator=g, device=h.device, dtype=h.dtype)

    def pre(_m, args, kwargs):
        if "hidden_states" in kwargs:
            return args, {**kwargs, "hidden_states": noisy(kwargs["hidden_states"])}
        return (noisy(args[0]), *args[1:]), kwargs

    def post(_m, _a, out):
        if isinstance(out, (tuple, list)):
            return type(out)([noisy(out[0]), *out[1:]])
        return noisy(out)

    # h_0 is layer 0's input; h_l (l >= 1) is layer l-1's output: hooking exactly where the lens' capture reads
    # h_l (and before it, since `measure` registers later) means the lens at depth l sees h_l + eps too.
    h = (layers[0].register_forward_pre_hook(pre, with_kwargs=True) if depth == 0
         else layers[depth - 1].register_forward_hook(post))
    try:
        yield
    finally:
        h.remove()


def cell_seed(seed: int, ai: int, depth: int) -> int:
    return 1_000_003 * seed + 1009 * ai + depth


def noise_grid(lm, samples, fmt: str = "cloze", *, alphas=(0.5, 1.0, 2.0), depths=None, seeds=(0, 1, 2),
               sigma=None, include_bos: bool = False, score_kind: str = "raw", margin: str = "logit",
               batch_size: int = 16, progress: bool = True, tp: int | None = None, journal=None,
               dense_prefix: bool = True) -> dict:
    """Final DM and accuracy under noise. Returns JSON-ready dict with `dm` and `acc` [A, Dsel, S] arrays,
    their mean/std over seeds [A, Dsel], the clean full-depth measurement (TP, phases) and sigma [L+1].
    progress: one bar over the passes (sigma, clean, then one per cell), from the first one. journal (journal.py):
    cells a killed run finished are read from it (sigma and the clean pass rerun; a cell's key holds its sigma).
    dense_prefix: cloze passes with noise at depth d start from the clean residual at d-1 (engine/prefix.py)."""
    from .states import prompt_states

    t0 = time.time()
    journal = journal or NoJournal()
    L = lm.anatomy.num_layers
    depths = list(range(L + 1)) if depths is None else sorted(set(depths))
    bar = tqdm(total=(sigma is None) + 1 + len(alphas) * len(depths) * len(seeds), desc="noise",
               disable=not progress)
    if sigma is None:
        sigma = prompt_states(lm, samples, fmt, include_bos=include_bos, batch_size=batch_size)["sigma"]
        bar.update()
    # A given TP (e.g. from a finished `analyze` run) spares the full-depth clean lens, ~L times the cost on a CPU.
    # Noise at depth d >= 2 leaves h_0..h_{d-1} clean: a noisy pass starts at d-1 from the clean pass's stored
    # residual and runs layer d-1 (whose output the noise hook perturbs, as in a whole pass) onwards.
    pre = (DensePrefix(fmt, depths={d - 1 for d in depths if d >= 2})
           if dense_prefix and not is_auto(batch_size) else None)
    clean = measure(lm, samples, fmt, score_kind=score_kind, margin=margin, batch_size=batch_size,
                    progress=False, depths=None if tp is None else [L], resume=pre.saver(L) if pre else None)
    bar.update()
    if tp is not None:
        clean.summary.update(transition_point=tp, tp_source="given")
    dm = np.zeros((len(alphas), len(depths), len(seeds)))
    acc = np.zeros_like(dm)
    for ai, a in enumerate(alphas):
        for di, d in enumerate(depths):
            for si, s in enumerate(seeds):
                def cell(a=a, d=d, s=s, ai=ai):
                    with gaussian_noise(lm.anatomy, d, float(a * sigma[d]), cell_seed(s, ai, d)):
                        m = measure(lm, samples, fmt, score_kind=score_kind, margin=margin, depths=[L], n_boot=1,
                                    batch_size=batch_size, progress=False, resume=pre.at(d - 1) if pre else None)
                    return [m.summary["dm_final"], m.summary["acc"]]
                key = (float(a), int(d), int(s), cell_seed(s, ai, d), float(sigma[d]))    # the draw's own seed too
                dm[ai, di, si], acc[ai, di, si] = journal(key, cell)
                bar.update()
    bar.close()
    return {"alphas": list(alphas), "depths": depths, "seeds": list(seeds), "sigma": np.asarray(sigma),
            "sigma_include_bos": include_bos, "num_layers": L, "score_kind": score_kind, "margin": margin,
            "clean": {**clean.summary, "dm_by_depth": [r["dm_mean"] for r in clean.depths]},
            "dm": dm, "acc": acc, "dm_mean": dm.mean(2), "dm_std": dm.std(2, ddof=1) if len(seeds) > 1 else 0 * dm[..., 0],
            "acc_mean": acc.mean(2), "acc_std": acc.std(2, ddof=1) if len(seeds) > 1 else 0 * acc[..., 0],
            "seconds": round(time.time() - t0, 1)}


def phase_sensitivity(res: dict) -> list[dict]:
    """Per alpha: mean drop (clean - noisy) of final DM and of accuracy when the noise is in the Silent vs the
    Decisive phase. Both, because a DM can fall on questions that stay right (and accuracy can fall while DM barely
    moves), and the paper's Figure 6 shows both."""
    tp = res["clean"].get("transition_point")
    out = []
    for ai, a in enumerate(res["alphas"]):
        row = {"alpha": a}
        for key, clean, noisy in (("", "dm_final", "dm_mean"), ("acc_", "acc", "acc_mean")):
            drop = res["clean"][clean] - np.asarray(res[noisy])[ai]
            sil = [x for d, x in zip(res["depths"], drop) if tp is not None and d < tp]
            dec = [x for d, x in zip(res["depths"], drop) if tp is not None and d >= tp]
            row[f"silent_{key}drop"] = float(np.mean(sil)) if sil else None
            row[f"decisive_{key}drop"] = float(np.mean(dec)) if dec else None
        row["n_silent"], row["n_decisive"] = len(sil), len(dec)
        out.append(row)
    return out
