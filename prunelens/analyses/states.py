"""Raw residual states of the prompt tokens at every depth: the token mean ("hidden") and the decision token.

The decision token is the position whose state predicts the answer: the last context token in cloze format (its
lens output scores the first continuation token) and the prompt's last token in letter format.
"""
from __future__ import annotations

import numpy as np
import torch

from ..engine.autobatch import fixed
from ..engine.capture import capture_residuals
from ..engine.encode import default_add_bos, encode, encode_pair
from ..engine.score import _batches, _left_pad


def prompt_ids(lm, samples, fmt: str, add_bos: bool | None = None) -> tuple[list[list[int]], bool]:
    """Token ids of each sample's prompt (cloze: option 0's context, lm-eval tokenisation; letter: letter prompt)."""
    if add_bos is None:
        add_bos = default_add_bos(lm.tokenizer, getattr(lm.model.config, "model_type", ""))
    if fmt == "cloze":
        ids = [encode_pair(lm.tokenizer, s.contexts[0], s.continuations[0], add_bos)[0] for s in samples]
    elif fmt == "letter":
        ids = [encode(lm.tokenizer, s.letter_prompt, add_bos) for s in samples]
    else:
        raise ValueError(f"unknown format {fmt!r}: choose letter or cloze")
    return ids, add_bos


@torch.no_grad()
def prompt_states(lm, samples, fmt: str = "cloze", *, include_bos: bool = False, add_bos: bool | None = None,
                  batch_size: int = 8, max_tokens: int = 4096) -> dict:
    """Per-depth prompt states of the model as it is now (dense or inside a pruned_view).

    Returns {"hidden": [D, N, d] float64 token mean over the prompt, "decision": [D, N, d] float64 last-token state,
    "sigma": [D] std of h_l over every counted (sample, token, dim), "n_tokens": [N]}; D = current layers + 1.
    include_bos=False (choice) leaves BOS out of the mean and of sigma: its state is an attention-sink outlier
    that is the same for every prompt, and with it the token mean mostly tracks 1/length.
    """
    ids, add_bos = prompt_ids(lm, samples, fmt, add_bos)
    bos = lm.tokenizer.bos_token_id
    N, dev = len(ids), lm.device
    hidden, decision = [None] * N, [None] * N
    s1 = s2 = None
    count = 0
    lengths = [len(x) for x in ids]
    order = sorted(range(N), key=lambda i: -lengths[i])
    for batch in _batches(order, lengths, fixed(batch_size, lm), max_tokens):
        x, mask, pos = _left_pad([ids[i] for i in batch], lm.tokenizer.pad_token_id or 0, dev)
        B, T = x.shape
        with capture_residuals(lm.anatomy, torch.arange(T, device=dev)[None].expand(B, T)) as cap:
            lm.anatomy.base(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=False)
        h = cap.stacked().double()                                     # [B, D, T, d]
        m = mask.bool().clone()
        if not include_bos and add_bos and bos is not None:
            m &= x != bos
        m = m[:, None, :, None].to(h.dtype)                            # [B, 1, T, 1]
        mean = (h * m).sum(2) / m.sum(2).clamp_min(1)                  # [B, D, d]
        # sigma over (sample, token, dim): accumulate first and second moments per depth.
        hs = h * m
        s1 = (hs.sum((0, 2, 3)) if s1 is None else s1 + hs.sum((0, 2, 3)))
        s2 = ((hs * h).sum((0, 2, 3)) if s2 is None else s2 + (hs * h).sum((0, 2, 3)))
        count += m.sum().item() * h.shape[-1]
        for b, i in enumerate(batch):
            hidden[i], decision[i] = mean[b].cpu().numpy(), h[b, :, -1].cpu().numpy()
    var = (s2 / count - (s1 / count) ** 2).clamp_min(0)
    return {"hidden": np.stack(hidden, 1), "decision": np.stack(decision, 1), "sigma": var.sqrt().cpu().numpy(),
            "n_tokens": np.array(lengths)}
