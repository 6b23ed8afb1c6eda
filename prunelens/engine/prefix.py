"""The dense model's residuals, kept from one scoring pass so that a pruned model's passes skip the unchanged prefix.

A model without layers R computes exactly the dense states up to depth min(R): its scoring can start there from the
stored residual instead of recomputing the prefix (as the prune engine's prefix cache does), which saves min(R)/L of
the trunk. Residuals are stored per forward call of a cloze scoring run (engine `Resume` keys), on the device they
were computed on. Letter-format scoring has no resume path: `resume` gives None there and the passes run whole.

Memory is bounded by `max_bytes` (default $PRUNELENS_PREFIX_MB, else 4096 MiB; 0 turns the prefix off): when the store
would exceed it, the shallowest stored depth is dropped whole (it saves the least) and passes that would start there
run whole. Numbers never depend on what was kept: a pass from the prefix equals the whole pass within float error.
"""
from __future__ import annotations

import os

from .score import Resume


def default_max_bytes() -> int:
    try:
        return int(float(os.environ.get("PRUNELENS_PREFIX_MB", 4096)) * 2**20)
    except ValueError:
        raise ValueError(f"PRUNELENS_PREFIX_MB must be a number of MiB, got {os.environ['PRUNELENS_PREFIX_MB']!r}") \
            from None


class DensePrefix:
    def __init__(self, fmt: str, enabled: bool = True, depths=None, max_bytes: int | None = None):
        """depths: the start depths (`start`) that will be asked for (None: every depth)."""
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        self.on = enabled and fmt == "cloze" and self.max_bytes > 0
        self.depths = None if depths is None else sorted({int(d) for d in depths if d > 0})
        self.store: dict = {}
        self.dropped: set[int] = set()
        self.bytes = 0

    def put(self, d: int, call, h) -> None:
        """Store forward `call`'s residual at depth d (within max_bytes: see the module docstring)."""
        if d in self.dropped:
            return
        self.store[d, call] = h
        self.bytes += h.numel() * h.element_size()
        while self.bytes > self.max_bytes:
            lo = min(k[0] for k in self.store)           # the shallowest depth saves the least: it goes first
            self.dropped.add(lo)
            for k in [k for k in self.store if k[0] == lo]:
                x = self.store.pop(k)
                self.bytes -= x.numel() * x.element_size()

    def saver(self, num_layers: int) -> Resume | None:
        """For the dense scoring pass: hand every needed depth's residual to the store."""
        if not self.on:
            return None
        keep = list(range(1, num_layers)) if self.depths is None else [d for d in self.depths if d < num_layers]
        return Resume(save=keep, put=self.put)

    @staticmethod
    def start(removed, num_layers: int) -> int:
        """The depth the model without `removed` starts at: min(removed), or one layer earlier when nothing would
        run after it (a removed tail: the engine needs one layer to run). 0: nothing to reuse."""
        if not len(removed):
            return 0
        s = min(removed)
        return s - 1 if s >= num_layers - len(removed) else s

    def at(self, depth: int) -> Resume | None:
        """Start the trunk at `depth` from the stored residual (None: run whole: letter format, depth 0, or a depth
        that was not stored or was dropped)."""
        if (not self.on or depth <= 0 or depth in self.dropped
                or (self.depths is not None and depth not in self.depths)):
            return None
        return Resume(start=depth, fetch=lambda call: self.store[(depth, call)])

    def resume(self, removed, num_layers: int) -> Resume | None:
        """For the model without `removed`: start at `start(...)` from the stored residual (None: run whole)."""
        return self.at(self.start(removed, num_layers))
