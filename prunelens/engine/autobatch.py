"""`--batch-size auto`: score with the largest batch that fits in memory.

`score_auto` runs a scorer (`score_letter` / `score_cloze`) on consecutive chunks of the samples, longest first (so
the first chunk is the hardest), each chunk a few batches long. It starts from a guess; on out-of-memory
(`torch.OutOfMemoryError` on CUDA/MPS/XPU, or a RuntimeError "out of memory" / DefaultCPUAllocator on CPU, or a Python
MemoryError) it halves the batch size and retries only the failed chunk: finished chunks are kept. After the first
failure it bisects between the largest size that ran and the smallest that failed, on later chunks, so the size it
ends with is the largest that fits (for the longest prompts seen first). The size is remembered on the LoadedModel,
so later calls of the same run (e.g. one per pruning step) start from it and never retry a size known to fail.

Scores.info records it: `batch_size` (the size the run ended with, which every chunk after the search used) and
`batch_size_auto` (`start`, `out_of_memory_at`: the sizes that failed, in order). Results equal those of a fixed
batch size up to float rounding (padding differs between batchings, as with any change of --batch-size).

Only the engine's scoring calls search; code that forms its own batches (calibration prompts, hidden-state
statistics) asks `fixed(batch_size, lm)`, which gives the size a search already found, else `FALLBACK`.
"""
from __future__ import annotations

import gc
from typing import Callable

import numpy as np

AUTO = "auto"
START_CUDA = 128          # first guess on an accelerator; capped by the number of samples
START_CPU = 32            # first guess on CPU (no out-of-memory there before the machine swaps: keep it modest)
CHUNK_BATCHES = 4         # batches per chunk: an out-of-memory error loses at most this much finished work
FALLBACK = 8              # what `fixed` gives before any search has run


def is_auto(batch_size) -> bool:
    return isinstance(batch_size, str) and batch_size.strip().lower() == AUTO


def is_oom(e: BaseException) -> bool:
    """An out-of-memory error of torch (any device) or of the CPU allocator."""
    if isinstance(e, MemoryError):
        return True
    import torch
    types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                              getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)) if isinstance(t, type))
    if types and isinstance(e, types):
        return True
    if isinstance(e, RuntimeError):
        m = str(e).lower()
        return any(s in m for s in ("out of memory", "defaultcpuallocator", "can't allocate memory",
                                    "cannot allocate memory", "not enough memory"))
    return False


def _free_memory() -> None:
    gc.collect()
    import torch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _state(lm) -> dict:
    st = getattr(lm, "_prunelens_autobatch", None)
    if st is None:
        st = {"lo": None, "hi": None}      # largest size that ran, smallest that failed
        try:
            setattr(lm, "_prunelens_autobatch", st)
        except AttributeError:
            pass
    return st


def fixed(batch_size, lm=None, fallback: int = FALLBACK) -> int:
    """An int batch size for code that batches on its own: the given int, else the size an auto search found for
    this model, else `fallback`."""
    if not is_auto(batch_size):
        return batch_size
    lo = _state(lm)["lo"] if lm is not None else None
    return lo or fallback


def used(lm, batch_size):
    """The batch size to record in a run's config: the one an auto search ended with, or the fixed one given."""
    if not is_auto(batch_size):
        return batch_size
    return _state(lm)["lo"] or batch_size


def _guess(lm, n: int) -> int:
    try:
        accel = lm.device.type != "cpu"
    except Exception:  # noqa: BLE001 - a model without a plain device: assume CPU
        accel = False
    return max(1, min(n, START_CUDA if accel else START_CPU))


def _text_len(s) -> int:
    return max(len(c) + len(t) for c, t in zip(s.contexts, s.continuations)) if s.contexts else len(s.letter_prompt)


def score_auto(fn: Callable, lm, samples, *, fmt: str, progress: bool = True, start: int | None = None,
               **kw):
    """fn(lm, samples, batch_size=b, progress=False, **kw) over chunks with the batch size searched as described in
    the module docstring. Returns one Scores in the order of `samples`."""
    from tqdm.auto import tqdm

    if kw.get("resume") is not None:
        raise ValueError("--batch-size auto cannot be used with resumable scoring (stored states are keyed by "
                         "batches); give a number")
    if not samples:
        return fn(lm, samples, batch_size=1, progress=False, **kw)
    kw["max_tokens"] = 1 << 40          # the searched batch size is the memory bound, not a token cap
    st = _state(lm)
    n = len(samples)
    # From the size found before if one also failed (the search is done); else from the larger of it and the guess.
    b = start or (st["lo"] if st["hi"] is not None else max(st["lo"] or 0, _guess(lm, n)))
    if st["hi"] is not None:
        b = min(b, st["hi"] - 1)
    b = max(1, b)
    first = b
    ooms: list[int] = []
    # Longest first (by text length, a proxy for tokens): the first chunk is the hardest one to fit.
    fmt_len = (lambda s: len(s.letter_prompt)) if fmt == "letter" else _text_len
    order = sorted(range(n), key=lambda i: (-fmt_len(samples[i]), i))
    parts: list[tuple[list[int], object]] = []
    pos = 0
    bar = tqdm(total=n, desc=f"{fmt} (batch auto)", disable=not progress)
    try:
        while pos < n:
            lo, hi = st["lo"], st["hi"]
            if lo is not None and hi is not None and hi - lo > 1 and b == lo:
                b = (lo + hi) // 2              # bisect upwards on the next chunk
            idx = order[pos:pos + b * CHUNK_BATCHES]
            failed = False
            try:
                sc = fn(lm, [samples[i] for i in idx], batch_size=b, progress=False, **kw)
            except Exception as e:  # noqa: BLE001 - only out-of-memory is handled; the rest is re-raised
                if not is_oom(e) or b == 1:
                    raise
                failed = True
            if failed:                          # outside the except block: the traceback's tensors are released
                _free_memory()
                ooms.append(b)
                st["hi"] = b if st["hi"] is None else min(st["hi"], b)
                if st["lo"] is not None and st["lo"] >= b:
                    st["lo"] = None             # a size that ran before fails on this chunk: search below it
                b = st["lo"] if st["lo"] is not None else max(1, b // 2)
                continue
            proved = min(b, len(idx))           # a short last chunk ran fewer rows: it proves only that many
            st["lo"] = proved if st["lo"] is None else max(st["lo"], proved)
            parts.append((idx, sc))
            pos += len(idx)
            bar.update(len(idx))
            b = st["lo"]
    finally:
        bar.close()
    out = merge([p for _, p in parts], [i for idx, _ in parts for i in idx])
    out.info["batch_size"] = st["lo"]
    out.info["batch_size_auto"] = {"start": first, "out_of_memory_at": ooms}
    return out


def _pad(a: np.ndarray | None, k: int, fill):
    if a is None:
        return None
    if a.shape[-1] == k:
        return a
    width = [(0, 0)] * (a.ndim - 1) + [(0, k - a.shape[-1])]
    return np.pad(a, width, constant_values=fill)


def merge(parts: list, index: list[int]):
    """One Scores from the Scores of chunks; `index[j]` is the original position of the j-th merged sample."""
    from .score import Scores

    k = max(p.scores.shape[-1] for p in parts)
    inv = np.argsort(np.asarray(index))

    def cat(name, fill):
        arrs = [getattr(p, name) for p in parts]
        if any(a is None for a in arrs):
            return None
        return np.concatenate([_pad(a, k, fill) for a in arrs])[inv]

    p0 = parts[0]
    info = {key: v for key, v in p0.info.items() if key != "letter_token_ids"}
    if "letter_token_ids" in p0.info:
        ids = [t for p in parts for t in p.info["letter_token_ids"]]
        info["letter_token_ids"] = [ids[j] for j in inv]
    all_ids = [s for p in parts for s in p.ids]
    return Scores(p0.fmt, p0.depths, cat("scores", np.nan), cat("norm", np.nan),
                  np.concatenate([p.gold for p in parts])[inv], np.concatenate([p.n_options for p in parts])[inv],
                  [all_ids[j] for j in inv], final_loglik=cat("final_loglik", np.nan),
                  final_greedy=cat("final_greedy", False), n_tokens=cat("n_tokens", 0), info=info)
