"""Finished passes of a long run, so that a killed run continues where it stopped instead of starting over.

`<out>/.resume-<name>.jsonl`: the first line is the run's key (model weights, samples and every option that changes a
number), then one `[pass key, value]` line per finished pass, appended and fsynced as the pass ends. A journal with
another key is replaced (another run's numbers are never reused); a line cut by a kill ends the journal there.
Values go through JSON both when computed and when read back, so a resumed run and an uninterrupted one hand the
same Python values (lists, floats that round-trip exactly, NaN included) to what follows. The run removes its journal
once its results are written. No pickle: a journal is data, never code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .results import _default

PREFIX = ".resume-"


def _dumps(o, sort: bool = False) -> str:
    return json.dumps(o, default=_default, sort_keys=sort)


class Journal:
    def __init__(self, out, name: str, key: dict, alt_key=None):
        """alt_key: None, or a function giving another key under which a journal of this very run may have been
        written (the model identity's earlier rule); such a journal is resumed and rewritten under `key`."""
        self.path = Path(out) / f"{PREFIX}{name}.jsonl"
        self.key = json.loads(_dumps(key, sort=True))
        self.done: dict[str, object] = {}
        self._fh = None
        if self.path.is_file():
            lines = self.path.read_text(errors="replace").splitlines()
            try:
                head = json.loads(lines[0]) if lines else None
                same = head == {"key": self.key} or (
                    alt_key is not None and head == {"key": json.loads(_dumps(alt_key(), sort=True))})
            except ValueError:
                same = False
            for ln in lines[1:] if same else []:
                try:
                    k, v = json.loads(ln)
                except (ValueError, TypeError):
                    break                   # cut by a kill: nothing after it was written whole
                self.done[k] = v
        self.resumed = len(self.done)

    def _open(self):
        if self._fh is None:        # rewrite the header and the good entries: drops a cut line or another run's file
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
            tmp.write_text("".join(_dumps(x) + "\n" for x in [{"key": self.key}, *map(list, self.done.items())]))
            os.replace(tmp, self.path)
            self._fh = open(self.path, "a")
        return self._fh

    def __contains__(self, key) -> bool:
        return (key if isinstance(key, str) else _dumps(key, sort=True)) in self.done

    def __call__(self, key, compute):
        """The value of pass `key` (any JSON-able key): from the journal, or `compute()` then recorded."""
        k = key if isinstance(key, str) else _dumps(key, sort=True)
        if k not in self.done:
            line = _dumps([k, compute()])
            fh = self._open()
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            self.done[k] = json.loads(line)[1]
        return self.done[k]

    def close(self, remove: bool = True) -> None:
        """Close; `remove`: the run is complete, delete the journal."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if remove:
            self.path.unlink(missing_ok=True)


def plain(o):
    """`o` as the JSON values a journal hands back (lists for arrays and tuples, floats for numpy scalars)."""
    return json.loads(_dumps(o))


class NoJournal:
    """Every pass computed, nothing recorded (runs without an output folder: tests, library calls)."""
    resumed = 0

    def __contains__(self, key) -> bool:
        return False

    def __call__(self, key, compute):
        return plain(compute())

    def close(self, remove: bool = True) -> None:
        pass


def for_run(out, name: str, lm, samples, **options):
    """The journal of run `name` in folder `out` (None: NoJournal), keyed by the model's weights, the samples and
    `options` (everything else that changes a number: format, score, margin, batch size, seeds, removal set...)."""
    if out is None:
        return NoJournal()
    from .fingerprint import legacy_model_identity, model_identity, samples_digest
    rest = {"samples": samples_digest(samples), **options}
    return Journal(out, name, {"model": model_identity(lm), **rest},
                   alt_key=lambda: {"model": legacy_model_identity(lm), **rest})
