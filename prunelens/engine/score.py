"""Per-depth option scores for a list of MCSamples, in the letter and cloze formats.

Flow per batch: one forward of the trunk with hooks that keep only the scored positions, then one stacked lens
projection of every (depth, position) row. In cloze format each distinct context is run once; its KV cache is then
copied to one row per option and only the continuation tokens are run (`batch_select_indices`). Sequences are
left-padded with explicit position ids, and batches are formed from length-sorted contexts.
"""
from __future__ import annotations

import copy
import inspect
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..tasks.base import MCSample, TaskError
from ..model.surgery import pruned_view
from .autobatch import is_auto, score_auto
from .capture import _hidden_of, _input_of, capture_residuals, inject_input
from .encode import default_add_bos, encode, encode_pair, letter_token_ids
from .lens import Lens


@dataclass
class Scores:
    """scores [N, D, Kmax] float64, NaN where a sample has fewer options. Cloze: summed log-prob (raw) and
    `norm` = raw / len(choice) in characters (lm-eval's acc_norm). Letter: lens logit of the option's letter token.
    `final_loglik` / `final_greedy` [N, Kmax]: the last captured depth's log-likelihood and lm-eval is_greedy flag."""

    fmt: str
    depths: list[int]
    scores: np.ndarray
    norm: np.ndarray | None
    gold: np.ndarray
    n_options: np.ndarray
    ids: list[str]
    final_loglik: np.ndarray | None = None
    final_greedy: np.ndarray | None = None
    n_tokens: np.ndarray | None = None          # [N, Kmax] continuation token counts (cloze)
    info: dict = field(default_factory=dict)


@dataclass
class Resume:
    """Start the trunk at depth `start` from stored residuals instead of the embeddings, and/or hand full residuals
    at depths `save` back to the caller (pruning: after a removal at depth p nothing before p changes).

    Forward calls are named in the order score_cloze makes them ((batch, 0): contexts, (batch, 1 + j): the j-th
    group of continuations), which is fixed by the samples, batch_size and max_tokens, so a residual stored by one
    call serves the same call of a later run. fetch(call) -> [B, T, d] residual at depth `start`;
    put(depth, call, [B, T, d])."""

    start: int = 0
    fetch: Callable | None = None
    save: Sequence[int] = ()
    put: Callable | None = None


@contextmanager
def _trunk(lm, resume: Resume | None, call: tuple[int, int], positions: torch.Tensor, depths: list[int]):
    """Capture `depths` (absolute) at `positions` during one trunk forward, run from `resume.start` if given."""
    start = resume.start if resume else 0
    save = [d for d in (resume.save if resume else ()) if d >= start and not (d == start and start > 0)]
    with pruned_view(lm, list(range(start, lm.anatomy.num_layers))) if start else nullcontext():
        layers = list(lm.anatomy.layers)
        handles = []

        def saver(d):
            def hook(_m, *a):
                h = _input_of(*a) if d == 0 else _hidden_of(a[-1])
                resume.put(d, call, h.detach().clone())
            return hook

        try:
            # The injection hook is registered first: pre-hooks chain, so capture at depth `start` sees the stored
            # residual, not the embeddings.
            if start:
                handles.append(layers[0].register_forward_pre_hook(inject_input(lambda: resume.fetch(call)),
                                                                   with_kwargs=True))
            for d in save:
                handles.append(layers[0].register_forward_pre_hook(saver(d), with_kwargs=True) if d == 0
                               else layers[d - start - 1].register_forward_hook(saver(d)))
            with capture_residuals(lm.anatomy, positions, [d - start for d in depths]) as cap:
                yield cap
        finally:
            for h in handles:
                h.remove()


def _left_pad(seqs: list[list[int]], pad_id: int, device):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, T - len(s):] = torch.tensor(s)
        mask[b, T - len(s):] = 1
    pos = (mask.cumsum(1) - 1).clamp_min(0)
    return ids.to(device), mask.to(device), pos.to(device)


def _batches(order: list[int], lengths: list[int], batch_size: int, max_tokens: int):
    """Consecutive chunks of a length-sorted order, capped by row count and padded token count."""
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) >= batch_size or max(lengths[j] for j in cur + [i]) * (len(cur) + 1) > max_tokens):
            yield cur
            cur = []
        cur.append(i)
    if cur:
        yield cur


def _split(lengths: list[int], overhead: int = 32) -> list[tuple[int, int]]:
    """Split length-sorted (descending) rows into contiguous groups [r0, r1) minimising padded positions plus
    `overhead` positions per extra forward (exact dynamic programme; rows are few)."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n                 # best[k]: cost of rows[:k]
    cut = [0] * (n + 1)
    for k in range(1, n + 1):
        for j in range(k):                            # last group = rows[j:k], padded to lengths[j]
            c = best[j] + lengths[j] * (k - j) + overhead
            if c < best[k]:
                best[k], cut[k] = c, j
    out, k = [], n
    while k > 0:
        out.append((cut[k], k))
        k = cut[k]
    return out[::-1]


def _cache_kw(base) -> str:
    """The forward's KV-cache keyword: `cache` in transformers 5 (which warns on `past_key_values` at every call),
    `past_key_values` before (and in models whose forward still names it so)."""
    try:
        params = inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _kv_cache(out):
    """The returned KV cache, read by its new name first (the old attribute warns in transformers 5)."""
    c = out.get("cache") if hasattr(out, "get") else None
    return c if c is not None else out.past_key_values


def _empty(n, d, k):
    return np.full((n, d, k), np.nan)


def _resolve(lm, samples, depths, add_bos):
    L = lm.anatomy.num_layers
    depths = list(range(L + 1)) if depths is None else sorted(set(depths))
    if any(not 0 <= d <= L for d in depths):
        raise ValueError(f"depths must lie in 0..{L}, got {depths}")
    if add_bos is None:
        add_bos = default_add_bos(lm.tokenizer, getattr(lm.model.config, "model_type", ""))
    kmax = max(s.n_options for s in samples)
    return depths, add_bos, kmax


@torch.no_grad()
def score_letter(lm, samples: list[MCSample], depths=None, batch_size: int = 16, max_tokens: int = 8192,
                 add_bos: bool | None = None, progress: bool = True) -> Scores:
    """Lens logit of each option's letter token (" A", " B", ...) at the prompt's last position, every depth.
    batch_size "auto": the largest that fits (engine/autobatch.py)."""
    if is_auto(batch_size):
        return score_auto(score_letter, lm, samples, fmt="letter", depths=depths, add_bos=add_bos, progress=progress)
    depths, add_bos, kmax = _resolve(lm, samples, depths, add_bos)
    tok, lens = lm.tokenizer, Lens(lm.anatomy)
    # Tokenise and validate everything before any compute: a bad letter token fails in seconds, not hours.
    prompts, letter_ids = [], []
    for s in samples:
        try:
            letter_ids.append(letter_token_ids(tok, s.letter_prompt, s.letters, add_bos))
        except ValueError as e:
            raise TaskError(f"sample {s.id!r}: {e}") from None
        prompts.append(encode(tok, s.letter_prompt, add_bos))
    vocab_rows = torch.tensor(sorted({t for ids in letter_ids for t in ids}))
    col = {t: j for j, t in enumerate(vocab_rows.tolist())}
    out = _empty(len(samples), len(depths), kmax)
    order = sorted(range(len(samples)), key=lambda i: -len(prompts[i]))
    lengths = [len(p) for p in prompts]
    for batch in tqdm(list(_batches(order, lengths, batch_size, max_tokens)), desc="letter", disable=not progress):
        ids, mask, pos = _left_pad([prompts[i] for i in batch], tok.pad_token_id, lm.device)
        last = torch.full((len(batch), 1), ids.shape[1] - 1, device=lm.device)
        with capture_residuals(lm.anatomy, last, depths) as cap:
            lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
        h = cap.stacked()[:, :, 0]                                               # [B, D, d]
        z = lens.letter_logits(h.reshape(-1, h.shape[-1]), vocab_rows)           # [B*D, |letters|]
        z = z.reshape(len(batch), len(depths), -1).double().cpu().numpy()
        for b, i in enumerate(batch):
            cols = [col[t] for t in letter_ids[i]]
            out[i, :, :len(cols)] = z[b][:, cols]
    return Scores("letter", depths, out, None, np.array([s.gold for s in samples]),
                  np.array([s.n_options for s in samples]), [s.id for s in samples],
                  info={"add_bos": add_bos, "letter_token_ids": letter_ids})


@torch.no_grad()
def score_cloze(lm, samples: list[MCSample], depths=None, batch_size: int = 16, max_tokens: int = 8192,
                add_bos: bool | None = None, progress: bool = True, resume: Resume | None = None) -> Scores:
    """Summed continuation log-likelihood of each option under the lens at every depth (exact full-vocab
    log-softmax, lm-eval tokenisation). `resume`: see Resume (depths must then be >= resume.start).
    batch_size "auto": the largest that fits (engine/autobatch.py)."""
    if is_auto(batch_size):
        return score_auto(score_cloze, lm, samples, fmt="cloze", depths=depths, add_bos=add_bos, progress=progress,
                          resume=resume)
    depths, add_bos, kmax = _resolve(lm, samples, depths, add_bos)
    if resume and resume.start and not (resume.start <= depths[0] and resume.start < lm.anatomy.num_layers):
        raise ValueError(f"resume depth {resume.start} must lie below {lm.anatomy.num_layers} (at least one layer "
                         f"runs) and at or before the first scored depth {depths[0]}")
    tok, lens, dev = lm.tokenizer, Lens(lm.anatomy), lm.device
    D, N = len(depths), len(samples)
    # groups: one per distinct context token sequence of a sample -> its options' continuations.
    groups: list[tuple[int, list[int], list[tuple[int, list[int]]]]] = []
    n_tok = np.zeros((N, kmax), dtype=np.int64)
    for i, s in enumerate(samples):
        by_ctx: dict[tuple, list] = {}
        for k, (c, t) in enumerate(zip(s.contexts, s.continuations)):
            try:
                ctx, cont = encode_pair(tok, c, t, add_bos)
            except ValueError as e:
                raise TaskError(f"sample {s.id!r} option {k}: {e}") from None
            by_ctx.setdefault(tuple(ctx), []).append((k, cont))
            n_tok[i, k] = len(cont)
        groups += [(i, list(ctx), opts) for ctx, opts in by_ctx.items()]

    raw = _empty(N, D, kmax)
    greedy = np.zeros((N, kmax), dtype=bool)
    for i, s in enumerate(samples):
        raw[i, :, :s.n_options] = 0.0
        greedy[i, :s.n_options] = True
    lengths = [len(g[1]) + max(len(c) for _, c in g[2]) for g in groups]
    # Batches are formed by context length (the context pass pads to it); continuations are regrouped by their
    # own length in the second pass.
    order = sorted(range(len(groups)), key=lambda g: (-len(groups[g][1]), -lengths[g], g))
    # Lens rows of several batches are stacked until a full projection chunk is reached (see Lens.chunk_rows):
    # plain evaluation scores only ~200 rows per batch, too few for an efficient full-vocabulary matmul.
    pending: list[tuple[torch.Tensor, torch.Tensor, Callable]] = []

    def flush():
        if not pending:
            return
        J = max(t.shape[1] for _, t, _ in pending)
        tg = torch.cat([torch.nn.functional.pad(t, (0, J - t.shape[1]), value=-1) for _, t, _ in pending])
        lp, gr = lens.token_logprobs(torch.cat([h for h, _, _ in pending]), tg)
        lp, gr = lp.double().cpu().numpy(), gr.cpu().numpy()
        r0 = 0
        for h, t, scatter in pending:
            scatter(lp[r0:r0 + len(h), :t.shape[1]], gr[r0:r0 + len(h), :t.shape[1]])
            r0 += len(h)
        pending.clear()

    for n_batch, batch in enumerate(tqdm(list(_batches(order, lengths, batch_size, max_tokens)), desc="cloze",
                                         disable=not progress)):
        G = [groups[g] for g in batch]
        ids, mask, pos = _left_pad([g[1] for g in G], tok.pad_token_id, dev)
        B, T = ids.shape
        last = torch.full((B, 1), T - 1, device=dev)
        with _trunk(lm, resume, (n_batch, 0), last, depths) as cap:
            out = lm.anatomy.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        h_rows = [cap.stacked()[:, :, 0].reshape(B * D, -1)]                    # [B*D, d]
        J = max(len(g[2]) for g in G)
        tgt = torch.full((B, D, J), -1, dtype=torch.long)
        for b, (_, _, opts) in enumerate(G):
            tgt[b, :, :len(opts)] = torch.tensor([cont[0] for _, cont in opts])
        t_rows = [tgt.reshape(B * D, J)]

        # Second pass: continuation tokens 0..m-2 (their states predict tokens 1..m-1) on a copy of the
        # context's cache per option. Single-token continuations (MMLU letters, BoolQ) need no second pass.
        # Options are length-sorted and split where padding would cost more than another forward (_split).
        rows = [(b, k, cont) for b, (_, _, opts) in enumerate(G) for k, cont in opts if len(cont) > 1]
        rows.sort(key=lambda r: -len(r[2]))
        v_i = v_k = None
        if rows:
            subs = _split([len(c) - 1 for _, _, c in rows])
            cache = _kv_cache(out)
            valid_all = []
            for n_sub, (r0, r1) in enumerate(subs):
                part = rows[r0:r1]
                M = len(part[0][2]) - 1
                sel = torch.tensor([b for b, _, _ in part], device=dev)
                c_sub = cache if n_sub == len(subs) - 1 else copy.deepcopy(cache)
                c_sub.batch_select_indices(sel)
                cids = torch.full((len(part), M), tok.pad_token_id, dtype=torch.long)
                cmask = torch.zeros((len(part), M), dtype=torch.long)
                for r, (_, _, c) in enumerate(part):
                    cids[r, :len(c) - 1] = torch.tensor(c[:-1])
                    cmask[r, :len(c) - 1] = 1
                full_mask = torch.cat([mask[sel], cmask.to(dev)], 1)
                pos2 = mask[sel].sum(1, keepdim=True) + torch.arange(M, device=dev)[None]
                with _trunk(lm, resume, (n_batch, 1 + n_sub), torch.arange(M, device=dev)[None].expand(len(part), M),
                            depths) as cap2:
                    lm.anatomy.base(input_ids=cids.to(dev), attention_mask=full_mask, position_ids=pos2,
                                    use_cache=True, **{_cache_kw(lm.anatomy.base): c_sub})
                hc = cap2.stacked()                                               # [R, D, M, d]
                # Keep only real (non-pad) continuation positions for the expensive full-vocab projection.
                valid = [(r, j) for r, (_, _, c) in enumerate(part) for j in range(len(c) - 1)]
                rr = torch.tensor([r for r, _ in valid], device=hc.device)
                jj = torch.tensor([j for _, j in valid], device=hc.device)
                h_rows.append(hc[rr, :, jj].reshape(-1, hc.shape[-1]))           # [V*D, d]
                valid_all += [(r0 + r, j) for r, j in valid]
                del c_sub
            ctgt = torch.full((len(valid_all), D, J), -1, dtype=torch.long)
            ctgt[:, :, 0] = torch.tensor([rows[r][2][j + 1] for r, j in valid_all])[:, None]
            t_rows.append(ctgt.reshape(-1, J))
            v_i = np.array([G[rows[r][0]][0] for r, _ in valid_all])
            v_k = np.array([rows[r][1] for r, _ in valid_all])
            del cache, out

        def scatter(lp, gr, G=G, B=B, J=J, v_i=v_i, v_k=v_k):
            # First block = context rows [B, D, J]; then real continuation positions [V, D, J] (column 0 used).
            lp0, gr0 = lp[:B * D].reshape(B, D, J), gr[:B * D].reshape(B, D, J)
            for b, (i, _, opts) in enumerate(G):
                for j, (k, _) in enumerate(opts):
                    raw[i, :, k] += lp0[b, :, j]
                    greedy[i, k] &= bool(gr0[b, -1, j])
            if v_i is not None:
                lpc = lp[B * D:].reshape(len(v_i), D, J)[..., 0]                 # [V, D]
                grc = gr[B * D:].reshape(len(v_i), D, J)[:, -1, 0]
                np.add.at(raw, (v_i, slice(None), v_k), lpc)
                np.logical_and.at(greedy, (v_i, v_k), grc)

        pending.append((torch.cat(h_rows), torch.cat(t_rows), scatter))
        if sum(len(h) for h, _, _ in pending) >= lens.chunk_rows:
            flush()
    flush()
    char_len = np.full((N, kmax), np.nan)
    for i, s in enumerate(samples):
        char_len[i, :s.n_options] = [len(c) for c in s.choices]
    return Scores("cloze", depths, raw, raw / char_len[:, None, :], np.array([s.gold for s in samples]),
                  np.array([s.n_options for s in samples]), [s.id for s in samples],
                  final_loglik=raw[:, -1].copy(), final_greedy=greedy, n_tokens=n_tok,
                  info={"add_bos": add_bos})


def score(lm, samples, fmt: str, **kw) -> Scores:
    if fmt == "letter":
        return score_letter(lm, samples, **kw)
    if fmt == "cloze":
        return score_cloze(lm, samples, **kw)
    raise ValueError(f"unknown format {fmt!r}: choose letter or cloze")
