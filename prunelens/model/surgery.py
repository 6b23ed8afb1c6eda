"""Pruned views of a model: keep any subset of layers (original ids), optionally replacing some by merged
modules, without copying the weights of the others.

A view swaps the trunk's ModuleList for one holding the kept blocks, re-indexes every `layer_idx` (the KV cache is
indexed by it: stale ids crash static-cache generation, transformers #30508), and slices `num_hidden_layers` and
`layer_types` in the config (left unsliced, the model cannot be reloaded: optipfair #20). Leaving the context
restores the dense model exactly.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

from torch import nn

from .anatomy import _text_config

_PER_LAYER_CONFIG_LISTS = ("layer_types",)


def check_layer_ids(ids, num_layers: int, what: str = "layer ids") -> list[int]:
    """The one check of a list of layer ids (from the CLI, a trajectory file or the API): integers (not bools, not
    strings, not floats), in 0..L-1, none repeated. Raises ValueError naming the offending ids."""
    try:
        ids = list(ids)
    except TypeError:
        raise ValueError(f"{what}: expected a list of layer ids, got {ids!r}") from None
    import numbers
    wrong = [i for i in ids if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
    if wrong:
        raise ValueError(f"{what}: layer ids must be integers, got {wrong!r}")
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not 0 <= i < num_layers]
    if bad:
        raise ValueError(f"{what}: layer ids {bad} out of range 0..{num_layers - 1}")
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{what}: layer ids {dup} given more than once")
    return ids


def check_keep(keep, num_layers: int) -> list[int]:
    keep = check_layer_ids(keep, num_layers, "kept layers")
    if not keep:
        raise ValueError("cannot remove every layer")
    return sorted(keep)


def keep_from_remove(remove, num_layers: int) -> list[int]:
    remove = set(check_layer_ids(remove, num_layers, "removed layers"))
    return check_keep([i for i in range(num_layers) if i not in remove], num_layers)


def _set_layer_idx(block: nn.Module, idx: int) -> list[tuple[nn.Module, str, object]]:
    """Set every integer `layer_idx` (and `layer_id`) attribute inside a block; return what was there."""
    saved = []
    for m in block.modules():
        for attr in ("layer_idx", "layer_id"):
            if isinstance(getattr(m, attr, None), int):
                saved.append((m, attr, getattr(m, attr)))
                setattr(m, attr, idx)
    return saved


def apply_keep(lm, keep, merged: dict[int, nn.Module] | None = None):
    """Mutate `lm` in place to keep only `keep` (original ids). Returns an undo callable and the new anatomy.

    `merged` maps an original id to a module that replaces that block (LaCo/MKA merges)."""
    a = lm.anatomy
    n = len(a.layers)
    keep = check_keep(keep, n)
    merged = merged or {}
    old_layers = a.layers
    new_layers = nn.ModuleList([merged.get(i, old_layers[i]) for i in keep])
    parent_path, _, name = a.layers_path.rpartition(".")
    parent = lm.model.get_submodule(parent_path) if parent_path else lm.model
    cfgs = {id(c): c for c in (lm.model.config, _text_config(lm.model.config))}.values()
    saved_cfg = [(c, k, getattr(c, k)) for c in cfgs for k in ("num_hidden_layers", *_PER_LAYER_CONFIG_LISTS)
                 if getattr(c, k, None) is not None]
    saved_idx = [s for j, block in enumerate(new_layers) for s in _set_layer_idx(block, j)]
    setattr(parent, name, new_layers)
    for c, k, v in saved_cfg:
        setattr(c, k, len(keep) if k == "num_hidden_layers" else [v[i] for i in keep])
    old_anatomy = a
    lm.anatomy = replace(a, layers=new_layers)

    def undo():
        for m, attr, v in reversed(saved_idx):
            setattr(m, attr, v)
        setattr(parent, name, old_layers)
        for c, k, v in saved_cfg:
            setattr(c, k, v)
        lm.anatomy = old_anatomy

    return undo


@contextmanager
def pruned_view(lm, keep, merged: dict[int, nn.Module] | None = None):
    """`with pruned_view(lm, keep=[0, 1, 3]): ...` runs the model with only those layers."""
    undo = apply_keep(lm, keep, merged)
    try:
        yield lm
    finally:
        undo()
