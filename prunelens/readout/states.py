"""The states a readout reads, every depth, float32.

decision states [N, D, d]: the prompt's last token (letter format: where the letter is read; cloze: the context's
last token, where the first answer token is read); the option trie's nodes (trie.py) are read the same way, each from
the context and the prefix its options share (`last_states`).
option states [N, K, D, d] (cloze): the last token of context + option k, the first state that has seen the whole
option; NaN rows for missing options.
"""
from __future__ import annotations

import numpy as np
import torch

from ..engine.autobatch import fixed
from ..engine.capture import capture_residuals
from ..engine.encode import default_add_bos, encode_pair
from ..engine.score import _batches, _left_pad


@torch.no_grad()
def last_states(lm, seqs: list[list[int]], batch_size: int, max_tokens: int = 4096) -> np.ndarray:
    """[S, D, d] float32: every depth's residual at each sequence's last token."""
    lengths = [len(s) for s in seqs]
    out = None
    for batch in _batches(sorted(range(len(seqs)), key=lambda i: -lengths[i]), lengths, fixed(batch_size, lm),
                          max_tokens):
        x, mask, pos = _left_pad([seqs[i] for i in batch], lm.tokenizer.pad_token_id or 0, lm.device)
        last = torch.full((len(batch), 1), x.shape[1] - 1, device=lm.device)
        with capture_residuals(lm.anatomy, last) as cap:
            lm.anatomy.base(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=False)
        h = cap.stacked()[:, :, 0].float().cpu().numpy()               # [B, D, d]
        if out is None:
            out = np.full((len(seqs), *h.shape[1:]), np.nan, dtype=np.float32)
        out[batch] = h
    return out


def decision_states(lm, samples, fmt: str, batch_size: int = 8, add_bos: bool | None = None) -> np.ndarray:
    from ..analyses.states import prompt_ids
    ids, _ = prompt_ids(lm, samples, fmt, add_bos)
    return last_states(lm, ids, batch_size)


def option_states(lm, samples, batch_size: int = 8, add_bos: bool | None = None) -> np.ndarray:
    if add_bos is None:
        add_bos = default_add_bos(lm.tokenizer, getattr(lm.model.config, "model_type", ""))
    seqs, where = [], []
    for i, s in enumerate(samples):
        for k in range(s.n_options):
            ctx, cont = encode_pair(lm.tokenizer, s.contexts[k], s.continuations[k], add_bos)
            seqs.append(ctx + cont)
            where.append((i, k))
    h = last_states(lm, seqs, batch_size)
    K = max(s.n_options for s in samples)
    out = np.full((len(samples), K, *h.shape[1:]), np.nan, dtype=np.float32)
    for r, (i, k) in enumerate(where):
        out[i, k] = h[r]
    return out
