"""The prefix-state cache: after layer k is removed nothing before k changes, so anything computed from a prefix of
the kept layers can be reused.

Keys are "prefixes": tuples of layer tokens (an original id, or (id, merge recipe) for a merged block), so a cached
value is valid for every pruned model that starts with exactly those blocks, wherever the search goes next (SKIP-Prun
restarts included). Two stores:
- `states`: full-sequence hidden states [B, T, d] of calibration batches, and of every forward call of the
  evaluation scoring ({call: tensor} per depth), LRU-bounded by `max_bytes` (the only large thing); `max_bytes=0`
  disables reuse (the naive path).
- `small`: per-depth option scores, BI sums, NLLs (a few KB per state); unbounded and saved for resume (no pickle:
  a `.npz` read with allow_pickle=False, its index JSON), so a resumed run reuses exactly the numbers an
  uninterrupted run would have reused. The file carries a key (model weights identity, samples, options): a file of
  another run is ignored, and a corrupt one too (the numbers are recomputed), never executed.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

SMALL_SCHEMA = "prunelens.prefix-cache/1"


class CacheFileError(ValueError):
    """A resume-cache file that cannot be read (corrupt, truncated, another format)."""


def _enc(o, arrays: list):
    """JSON-ready form of a cache key or value; numpy arrays go to `arrays` and are referenced by index."""
    if isinstance(o, np.ndarray):
        arrays.append(o)
        return {"a": len(arrays) - 1}
    if isinstance(o, tuple):
        return {"t": [_enc(x, arrays) for x in o]}
    if isinstance(o, list):
        return [_enc(x, arrays) for x in o]
    if isinstance(o, dict):
        return {"d": [[_enc(k, arrays), _enc(v, arrays)] for k, v in o.items()]}
    if isinstance(o, (bool, str)) or o is None:
        return o
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return {"f": repr(float(o))}                  # exact round trip, NaN/inf included
    raise TypeError(f"cache value of type {type(o).__name__} cannot be stored")


def _dec(o, arrays):
    if isinstance(o, list):
        return [_dec(x, arrays) for x in o]
    if isinstance(o, dict):
        if "a" in o:
            return arrays[f"a{int(o['a'])}"]
        if "t" in o:
            return tuple(_dec(x, arrays) for x in o["t"])
        if "d" in o:
            return {_dec(k, arrays): _dec(v, arrays) for k, v in o["d"]}
        if "f" in o:
            return float(o["f"])
        raise ValueError(f"unknown cache entry {sorted(o)}")
    if o is None or isinstance(o, (bool, int, str)):
        return o
    raise ValueError(f"unknown cache entry of type {type(o).__name__}")


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

    def save_small(self, path: Path, key: str = "") -> None:
        """Write `small` to `path` (.npz: arrays + a JSON index, no pickle), atomically."""
        path = Path(path)
        arrays: list = []
        index = {"schema": SMALL_SCHEMA, "key": key,
                 "entries": [[_enc(k, arrays), _enc(v, arrays)] for k, v in self.small.items()]}
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, index=np.array(json.dumps(index)), **{f"a{i}": a for i, a in enumerate(arrays)})
        tmp.replace(path)

    def load_small(self, path: Path, key: str = "") -> bool:
        """Add the entries stored in `path` if it was written under the same `key`; True if they were used.
        Raises CacheFileError (one line) for a file that is not a readable cache; never unpickles anything."""
        path = Path(path)
        if not (path.is_file() and self.enabled):
            return False
        try:
            with np.load(path, allow_pickle=False) as z:
                index = json.loads(str(z["index"][()]))
                if not isinstance(index, dict) or index.get("schema") != SMALL_SCHEMA:
                    raise ValueError("not a prunelens prefix cache")
                if index.get("key", "") != key:
                    return False
                arrays = {n: z[n] for n in z.files if n != "index"}
                entries = {_dec(k, arrays): _dec(v, arrays) for k, v in index["entries"]}
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
            raise CacheFileError(f"{path}: unreadable resume cache ({e})") from None
        self.small.update(entries)
        return True
