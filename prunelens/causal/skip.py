"""Skip effects: remove one layer of the dense model and measure how every later layer's contribution changes, and
how the decision changes (after Csordás et al., arXiv 2505.13898, "Do language models use their depth
efficiently?").

Layer m's contribution at a token is its update u_m = h_{m+1} - h_m (raw residuals, float32). With layer i
skipped, for every later layer m > i:
  rel_change[i, m] = sum_t ||u_m^skip(t) - u_m(t)|| / sum_t ||u_m(t)||   (how much m's update changes)
  norm_ratio[i, m] = sum_t ||u_m^skip(t)|| / sum_t ||u_m(t)||            (does m write more or less)
over every non-pad prompt token t but BOS (the prompt of `prompt_ids`: cloze context, letter prompt). Layers before i are
untouched (their row entries are 0 / 1 exactly: the test checks it); m = i is NaN (the layer is gone).
A late layer whose rel_change is near 0 for every earlier skip computes the same thing whatever came before it; a
large change marks a layer that builds on the skipped one. The decision effect of each skip is the paired change of
final accuracy and Decision Margin against the dense model, with bootstrap CIs (as Table 1's single-layer rows).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analyses.ablation import final_outcome as _outcome, paired
from ..analyses.states import prompt_ids
from ..engine.autobatch import fixed, is_auto
from ..engine.capture import capture_residuals, inject_input
from ..engine.prefix import DensePrefix
from ..engine.score import _batches, _left_pad, score
from ..journal import NoJournal
from ..model.surgery import check_layer_ids, keep_from_remove, pruned_view


def _residuals(lm, x, mask, pos, h0: torch.Tensor | None = None) -> torch.Tensor:
    """[B, L'+1, T, d] residuals (model dtype) of the model as it is now; h0 [B, T, d]: the first layer's input
    instead of the embeddings."""
    B, T = x.shape
    inj = (lm.anatomy.layers[0].register_forward_pre_hook(inject_input(lambda: h0), with_kwargs=True)
           if h0 is not None else None)            # registered before the capture: depth 0 reads h0
    try:
        with capture_residuals(lm.anatomy, torch.arange(T, device=x.device)[None].expand(B, T)) as cap:
            lm.anatomy.base(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=False)
    finally:
        if inj is not None:
            inj.remove()
    return cap.stacked()


def _diff(h: torch.Tensor) -> torch.Tensor:
    """Updates [B, D-1, T, d] float32 of residuals [B, D, T, d]."""
    h = h.float()
    return h[:, 1:] - h[:, :-1]


def _updates(lm, x, mask, pos) -> torch.Tensor:
    """[B, L', T, d] float32 updates of the model as it is now."""
    return _diff(_residuals(lm, x, mask, pos))


@torch.no_grad()
def skip_effects(lm, samples, fmt: str = "cloze", *, layers=None, decision: bool = True, score_kind: str = "raw",
                 margin: str = "logit", n_boot: int = 1000, seed: int = 0, batch_size: int = 8,
                 max_tokens: int = 4096, progress: bool = True, journal=None, dense_prefix: bool = True) -> dict:
    """Skip each layer in `layers` (default every layer) in turn. Returns JSON-ready dict with `rel_change` and
    `norm_ratio` [len(layers), L] and, if `decision`, per skipped layer the final accuracy / DM and their paired
    change against dense. journal (journal.py): each batch's sums and each decision row are read from it or
    recorded in it, so a killed run resumes at the batch it stopped in. dense_prefix: a skip of layer i runs layers
    i+1.. only, from the dense residual h_i (the layers before i compute exactly the dense states), and its decision
    pass starts there too (engine/prefix.py)."""
    t0 = time.time()
    L = lm.anatomy.num_layers
    layers = list(range(L)) if layers is None else check_layer_ids(layers, L, "skipped layers")
    if L < 2:
        raise ValueError("skip effects need a model with at least 2 layers")
    ids, add_bos = prompt_ids(lm, samples, fmt)
    bos = lm.tokenizer.bos_token_id if add_bos else None
    lengths = [len(x) for x in ids]
    order = sorted(range(len(ids)), key=lambda i: -lengths[i])
    diff = np.zeros((len(layers), L))
    skip_norm = np.zeros((len(layers), L))
    dense_norm = np.zeros(L)
    batches = list(_batches(order, lengths, fixed(batch_size, lm), max_tokens))
    bar = tqdm(total=len(batches) * (len(layers) + 1), desc="skip effects", disable=not progress)
    journal = journal or NoJournal()

    def sums(batch) -> dict:
        """This batch's token sums: dense update norms [L], and per skipped layer [len(layers), L] the norm of the
        update change and of the new update (0 where the layer is gone or comes before the skip)."""
        x, mask, pos = _left_pad([ids[i] for i in batch], lm.tokenizer.pad_token_id or 0, lm.device)
        # BOS is left out: its attention-sink state is the same for every prompt and its updates are outliers
        # that would dominate the sums (as analyses/states.py leaves it out of the token mean)
        m = (mask.bool() & (x != bos) if bos is not None else mask.bool())[:, None, :]     # [B, 1, T]
        hd = _residuals(lm, x, mask, pos)                                   # [B, L+1, T, d]
        u = _diff(hd)                                                       # [B, L, T, d]
        d_, s_ = np.zeros((len(layers), L)), np.zeros((len(layers), L))
        dense_b = (u.norm(dim=-1) * m).sum((0, 2)).double().cpu().numpy()
        bar.update()
        for r, i in enumerate(layers):
            keep = keep_from_remove([i], L)
            if dense_prefix:
                # layers before i compute exactly the dense updates: run layers i+1.. from the dense h_i only
                tail = keep[i:]
                if tail:
                    with pruned_view(lm, tail):
                        after = _diff(_residuals(lm, x, mask, pos, h0=hd[:, i]))
                us = torch.cat([u[:, :i], after], 1) if tail else u[:, :i]  # [B, L-1, T, d]
            else:
                with pruned_view(lm, keep):
                    us = _updates(lm, x, mask, pos)                         # [B, L-1, T, d]
            col = torch.tensor(keep, device=u.device)
            d_[r, keep] = ((us - u[:, col]).norm(dim=-1) * m).sum((0, 2)).double().cpu().numpy()
            s_[r, keep] = (us.norm(dim=-1) * m).sum((0, 2)).double().cpu().numpy()
            bar.update()
        return {"dense": dense_b, "diff": d_, "skip": s_}

    for batch in batches:
        key = ("sums", [int(i) for i in batch])        # by content: an automatic batch size may batch otherwise
        if key in journal:
            bar.update(len(layers) + 1)
        got = journal(key, lambda: sums(batch))
        dense_norm += np.asarray(got["dense"])
        diff += np.asarray(got["diff"])
        skip_norm += np.asarray(got["skip"])
    bar.close()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel, ratio = diff / dense_norm, skip_norm / dense_norm
    for r, i in enumerate(layers):
        rel[r, i] = ratio[r, i] = np.nan
    n_tok = int(sum(len(x) - (bos is not None and len(x) > 0 and x[0] == bos) for x in ids))
    res = {"num_layers": L, "skipped": layers, "n_samples": len(samples), "n_tokens": n_tok, "bos_excluded": bos is not None,
           "rel_change": rel, "norm_ratio": ratio, "dense_update_norm": dense_norm / max(1, n_tok),
           "format": fmt, "score_kind": score_kind, "margin": margin}
    if decision:
        kw = dict(batch_size=batch_size, progress=False)
        pre = (DensePrefix(fmt, depths={DensePrefix.start([i], L) for i in layers})
               if dense_prefix and not is_auto(batch_size) else None)
        r0 = pre.saver(L) if pre else None
        dense = _outcome(score(lm, samples, fmt, depths=[L], **kw, **({"resume": r0} if r0 else {})), score_kind,
                         margin)
        res["dense"] = {"acc": float(dense[:, 0].mean()), "dm": float(dense[:, 1].mean())}
        rows = []
        for i in tqdm(layers, desc="skip decision", disable=not progress):
            def row(i=i):
                r = pre.resume([i], L) if pre else None
                with pruned_view(lm, keep_from_remove([i], L)):
                    new = _outcome(score(lm, samples, fmt, depths=[L - 1], **kw, **({"resume": r} if r else {})),
                                   score_kind, margin)
                return {"layer": i, "acc": float(new[:, 0].mean()), "dm": float(new[:, 1].mean()),
                        **paired(dense, new, n_boot, seed)}
            rows.append(journal(("decision", i), row))
        res["decision"] = rows
    res["seconds"] = round(time.time() - t0, 1)
    return res
