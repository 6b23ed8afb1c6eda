"""The prefix-state cache: after layer k is removed nothing before k changes, so anything computed from a prefix of
the kept layers can be reused.

Keys are "prefixes": tuples of layer tokens (an original id, or (id, merge recipe) for a merged block), so a cached
value is valid for every pruned model that starts with exactly those blocks, wherever the search goes next (SKIP-Prun
restarts included). Two stores:
- `states`: full-sequence hidden states [B, T, d] of calibration batches, and of every forward call of the
  evaluation scoring ({call: tensor} per depth), LRU-bounded by `max_bytes` (the only large thing); `max_bytes=0`
  disables reuse (the naive path).
- `small`: per-depth option scores, BI sums, NLLs (a few KB per state); unbounded and picklable, so a resumed run
  reuses exactly the numbers an uninterrupted run would have reused.
"""
from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import torch


def layer_token(i: int, merges: dict) -> object:
    """The cache identity of kept block `i`: its id, or (id, recipe) when it is a merge of several blocks."""
    r = merges.get(i) if merges else None
    return i if r is None else (i, tuple((int(j), round(float(c), 12)) for j, c in r))


def prefix_keys(keep, merges) -> list[tuple]:
    """[D] prefixes: keys[d] identifies the residual after the first d kept blocks (depth d)."""
    toks = [layer_token(i, merges) for i in keep]
    return [tuple(toks[:d]) for d in range(len(toks) + 1)]


def _nbytes(t) -> int:
    if isinstance(t, dict):
        return sum(_nbytes(v) for v in t.values())
    return t.numel() * t.element_size()


class PrefixCache:
    def __init__(self, max_bytes: int = 512 << 20, enabled: bool = True):
        self.max_bytes = max_bytes if enabled else 0
        self.enabled = enabled
        self.states: OrderedDict = OrderedDict()
        self.nbytes = 0
        self.peak_bytes = 0
        self.hits = self.misses = 0
        self.resumed = 0            # scoring forwards that started from a cached residual, not the embeddings
        self.small: dict = {}

    # ---- large, LRU-bounded
    def get_state(self, key, count: bool = True):
        if key in self.states:
            self.states.move_to_end(key)
            self.hits += 1
            return self.states[key]
        self.misses += count
        return None

    def put_state(self, key, t) -> None:
        """t: a tensor, or a dict of tensors stored and evicted as one entry."""
        size = _nbytes(t)
        if not self.enabled or size > self.max_bytes or key in self.states:
            return
        while self.states and self.nbytes + size > self.max_bytes:
            _, old = self.states.popitem(last=False)
            self.nbytes -= _nbytes(old)
        self.states[key] = t
        self.nbytes += size
        self.peak_bytes = max(self.peak_bytes, self.nbytes)

    # ---- small, exact, persisted for resume
    def get(self, key):
        return self.small.get(key) if self.enabled else None

    def put(self, key, value) -> None:
        if self.enabled:
            self.small[key] = value

    def stats(self) -> dict:
        return {"enabled": self.enabled, "max_mb": round(self.max_bytes / 2**20, 1),
                "peak_mb": round(self.peak_bytes / 2**20, 1), "state_entries": len(self.states),
                "hits": self.hits, "misses": self.misses, "eval_forwards_resumed": self.resumed,
                "small_entries": len(self.small)}

    def save_small(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(pickle.dumps(self.small))
        tmp.replace(path)

    def load_small(self, path: Path) -> None:
        path = Path(path)
        if path.is_file() and self.enabled:
            self.small.update(pickle.loads(path.read_bytes()))
