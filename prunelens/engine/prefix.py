"""The dense model's residuals, kept from one scoring pass so that a pruned model's passes skip the unchanged prefix.

A model without layers R computes exactly the dense states up to depth min(R): its scoring can start there from the
stored residual instead of recomputing the prefix (as the prune engine's prefix cache does), which saves min(R)/L of
the trunk. Residuals are stored per forward call of a cloze scoring run (engine `Resume` keys). Letter-format
scoring has no resume path: `resume` gives None there and the passes run whole.
"""
from __future__ import annotations

from .score import Resume


class DensePrefix:
    def __init__(self, fmt: str, enabled: bool = True, depths=None):
        """depths: the start depths (`start`) that will be asked for (None: every depth). Memory: depths x tokens
        x d floats."""
        self.on = enabled and fmt == "cloze"
        self.depths = None if depths is None else sorted({int(d) for d in depths if d > 0})
        self.store: dict = {}

    def saver(self, num_layers: int) -> Resume | None:
        """For the dense scoring pass: hand every needed depth's residual to the store."""
        if not self.on:
            return None
        keep = list(range(num_layers)) if self.depths is None else [d for d in self.depths if d < num_layers]
        return Resume(save=keep, put=lambda d, call, h: self.store.__setitem__((d, call), h))

    @staticmethod
    def start(removed, num_layers: int) -> int:
        """The depth the model without `removed` starts at: min(removed), or one layer earlier when nothing would
        run after it (a removed tail: the engine needs one layer to run). 0: nothing to reuse."""
        s = min(removed)
        return s - 1 if s >= num_layers - len(removed) else s

    def at(self, depth: int) -> Resume | None:
        """Start the trunk at `depth` from the stored residual (None: run whole: letter format, depth 0, or a depth
        that was not stored)."""
        if not self.on or depth <= 0 or (self.depths is not None and depth not in self.depths):
            return None
        return Resume(start=depth, fetch=lambda call: self.store[(depth, call)])

    def resume(self, removed, num_layers: int) -> Resume | None:
        """For the model without `removed`: start at `start(...)` from the stored residual (None: run whole)."""
        return self.at(self.start(removed, num_layers))
