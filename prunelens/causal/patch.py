"""Read and overwrite the residual stream at one depth, forward by forward.

The scoring engine makes its trunk forwards in an order fixed by the samples, the batch size and the token budget
(each batch's contexts, then its continuation groups on a copy of the context cache), never by the model's layers.
So the k-th forward of a dense run and the k-th forward of a pruned run hold the same token rows, and a residual
recorded in one can be handed back to the other by its forward index. Shapes are checked at every hand-back: a
mismatch means the runs were batched differently, and is an error, never a silent misalignment.

Depth convention (as the lens and the noise hooks): depth 0 is the input of the first layer, depth l >= 1 the raw
output of layer l-1 (= the input of layer l), before the final norm at l = L.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch


def _hidden(x):
    return x[0] if isinstance(x, (tuple, list)) else x


class ForwardCalls:
    """Counts the trunk's forwards; `cached` says whether the current one continues a KV cache (a cloze
    continuation group) rather than starting from the prompt (every context, every letter-format prompt)."""

    def __init__(self):
        self.index = -1
        self.cached = False
        self.kinds: list[bool] = []

    def _hook(self, _mod, _args, kwargs):
        self.index += 1
        self.cached = any(kwargs.get(k) is not None for k in ("cache", "past_key_values"))
        self.kinds.append(self.cached)


@contextmanager
def forward_calls(anatomy):
    calls = ForwardCalls()
    h = anatomy.base.register_forward_pre_hook(calls._hook, with_kwargs=True)
    try:
        yield calls
    finally:
        h.remove()


def _at_depth(anatomy, depth: int, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """Register fn on the residual at `depth` (returns the handle). fn(h [B, T, d]) may return a replacement."""
    layers = list(anatomy.layers)
    if not 0 <= depth <= len(layers):
        raise ValueError(f"depth must lie in 0..{len(layers)}, got {depth}")
    if depth == 0:
        def pre(_m, args, kwargs):
            h = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            new = fn(h)
            if new is None:
                return None
            if "hidden_states" in kwargs:
                return args, {**kwargs, "hidden_states": new}
            return (new, *args[1:]), kwargs
        return layers[0].register_forward_pre_hook(pre, with_kwargs=True)

    def post(_m, _a, out):
        new = fn(_hidden(out))
        if new is None:
            return None
        return type(out)([new, *out[1:]]) if isinstance(out, (tuple, list)) else new
    return layers[depth - 1].register_forward_hook(post)


@contextmanager
def record_residuals(anatomy, depths, device="cpu"):
    """Within the context, every trunk forward stores its full residual [B, T, d] at each of `depths`.
    Yields (store, calls): store[depth][k] is forward k's residual (on `device`), calls.kinds[k] its kind."""
    store: dict[int, list[torch.Tensor]] = {int(d): [] for d in depths}
    handles = []
    with forward_calls(anatomy) as calls:
        try:
            for d in store:
                def keep(h, d=d):
                    store[d].append(h.detach().to(device, copy=True))   # returns None: the forward is unchanged
                handles.append(_at_depth(anatomy, d, keep))
            yield store, calls
        finally:
            for h in handles:
                h.remove()


@contextmanager
def patch_residual(anatomy, depth: int, fn: Callable[[int, bool, torch.Tensor], torch.Tensor]):
    """Within the context, the residual at `depth` of forward k is replaced by fn(k, cached, h) ([B, T, d] -> same
    shape). Entered before the scoring engine's capture hooks, so the lens at `depth` reads the patched state."""
    with forward_calls(anatomy) as calls:
        def swap(h):
            new = fn(calls.index, calls.cached, h)
            if new.shape != h.shape:
                raise RuntimeError(f"patch at depth {depth}, forward {calls.index}: stored residual has shape "
                                   f"{tuple(new.shape)}, this forward {tuple(h.shape)} (batched differently?)")
            return new.to(device=h.device, dtype=h.dtype)
        handle = _at_depth(anatomy, depth, swap)
        try:
            yield calls
        finally:
            handle.remove()
