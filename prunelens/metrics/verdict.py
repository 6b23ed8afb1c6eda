"""Verdicts decided by intervals, never by point estimates (the brief's standard): "holds" only when the interval
of the effect excludes the null, "does not hold" only when it excludes the claim, else "not resolved at this n"."""
from __future__ import annotations

import numpy as np

HOLDS, FAILS, UNRESOLVED, NODATA = "holds", "does not hold", "not resolved at this n", "not enough data"


def decide(lo, hi, claim: str = ">", null: float = 0.0) -> str:
    """Verdict on "effect <claim> null" from the effect's interval [lo, hi] (None bound = unbounded on that side).

    claim ">" : holds if lo > null, does not hold if hi <= null;   ">=": holds if lo >= null, not if hi < null;
    claim "<" : holds if hi < null, does not hold if lo >= null;   "<=": holds if hi <= null, not if lo > null.
    Anything else (the interval straddles the null) is not resolved at this n.
    """
    lo = -np.inf if lo is None else lo
    hi = np.inf if hi is None else hi
    if claim == ">":
        return HOLDS if lo > null else FAILS if hi <= null else UNRESOLVED
    if claim == ">=":
        return HOLDS if lo >= null else FAILS if hi < null else UNRESOLVED
    if claim == "<":
        return HOLDS if hi < null else FAILS if lo >= null else UNRESOLVED
    if claim == "<=":
        return HOLDS if hi <= null else FAILS if lo > null else UNRESOLVED
    raise ValueError(f"unknown claim {claim!r}")
