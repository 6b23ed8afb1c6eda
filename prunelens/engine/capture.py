"""Capture the raw residual stream at every depth, only at the positions that will be scored.

Depth 0 is the input of the first decoder layer (the embeddings, after any model-specific scaling such as Gemma's
sqrt(d)), depth l >= 1 the raw output of layer l-1. These are *pre* final norm: HF's `hidden_states[-1]` is already
normed, which is why we hook the layers instead of using `output_hidden_states`.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


def _hidden_of(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _input_of(args, kwargs):
    """The residual a decoder layer receives (keyword or first positional argument)."""
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def inject_input(get):
    """A forward pre-hook (with_kwargs=True) that replaces a layer's input residual by get()."""
    def hook(_mod, args, kwargs):
        h0 = get()
        if "hidden_states" in kwargs:
            return args, {**kwargs, "hidden_states": h0}
        return (h0, *args[1:]), kwargs
    return hook


class ResidualCapture:
    """Collects per-depth states gathered at `positions` [B, P] (indices into the sequence of this forward)."""

    def __init__(self, positions: torch.Tensor):
        self.positions = positions
        self.states: list[torch.Tensor] = []        # D tensors [B, P, d]

    def _take(self, h: torch.Tensor) -> None:
        idx = self.positions.to(h.device)[..., None].expand(-1, -1, h.shape[-1])
        self.states.append(h.gather(1, idx).detach())

    def stacked(self, device=None) -> torch.Tensor:
        """[B, D, P, d] in the model's dtype."""
        return torch.stack([s.to(device or self.states[0].device) for s in self.states], dim=1)


@contextmanager
def capture_residuals(anatomy, positions: torch.Tensor, depths=None):
    """Context manager: within it, a forward of `anatomy.base` records residuals at `positions` [B, P].

    `depths` (sorted subset of 0..L) limits what is kept, e.g. only the last depth for plain evaluation;
    `cap.states` then follows that order.
    """
    layers = list(anatomy.layers)
    want = set(range(len(layers) + 1) if depths is None else depths)
    cap = ResidualCapture(positions)
    handles = []

    def pre_hook(_mod, args, kwargs):
        cap._take(_input_of(args, kwargs))

    def post_hook(_mod, _args, out):
        cap._take(_hidden_of(out))

    try:
        if layers and 0 in want:
            handles.append(layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for i, layer in enumerate(layers):
            if i + 1 in want:
                handles.append(layer.register_forward_hook(post_hook))
        yield cap
    finally:
        for h in handles:
            h.remove()
    if len(cap.states) not in (0, len(want)):
        raise RuntimeError(f"captured {len(cap.states)} states for {len(want)} depths: a layer ran more than "
                           f"once or not at all (gradient checkpointing or a custom forward?)")
