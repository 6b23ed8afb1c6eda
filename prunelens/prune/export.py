"""Write a pruned model as a standard checkpoint that plain `AutoModelForCausalLM.from_pretrained(DIR)` loads,
without prunelens: the view's renumbered ModuleList gives contiguous parameter names, its config has the sliced
`num_hidden_layers`/`layer_types`, and tied embeddings are saved once and stay tied."""
from __future__ import annotations

import math
from pathlib import Path

from ..results import OutputError, read_json, staged, write_json
from .merge import BlockBank
from ..model.surgery import check_layer_ids, keep_from_remove, pruned_view


def _int_id(x, where: str, key: bool = False) -> int:
    """A layer id read from JSON: an integer; `key`: an object key, which JSON stores as a digit string."""
    if key and isinstance(x, str) and x.strip().isdigit():
        return int(x)
    if isinstance(x, bool) or not isinstance(x, int):
        raise ValueError(f"{where}: layer id {x!r} is not an integer")
    return x


def step_of(trajectory: str | Path, step: int) -> tuple[list[int], dict]:
    """(removed, merges) of step `step` (1-based; 0 = dense) of a trajectory.json or its folder. A malformed file
    (wrong types, a layer named twice) is one ValueError naming the file and the step."""
    p = Path(trajectory)
    f = p / "trajectory.json" if p.is_dir() else p
    t = read_json(f)
    if not isinstance(t, dict) or not isinstance(t.get("steps"), list):
        raise ValueError(f"{f}: not a prunelens trajectory (no 'steps' list)")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= len(t["steps"]):
        raise ValueError(f"--step {step}: the trajectory has steps 0..{len(t['steps'])}")
    s = (t.get("dense") or {}) if step == 0 else t["steps"][step - 1]
    where = f"{f} step {step}"
    if not isinstance(s, dict):
        raise ValueError(f"{where}: not an object")
    removed = s.get("removed", [])
    if not isinstance(removed, list):
        raise ValueError(f"{where}: 'removed' must be a list of layer ids, got {removed!r}")
    removed = [_int_id(x, where) for x in removed]
    L = t.get("num_layers")
    check_layer_ids(removed, L if isinstance(L, int) and L > 0 else max(removed, default=0) + 1, where)
    raw = s.get("merges") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: 'merges' must be an object {{id: [[id, weight], ...]}}")
    merges = {}
    for i, r in raw.items():
        try:
            rec = [(_int_id(j, where), float(c)) for j, c in r]
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: merge recipe of block {i!r} is malformed ({e})") from None
        if any(not math.isfinite(c) for _, c in rec):
            raise ValueError(f"{where}: merge recipe of block {i!r} has a non-finite weight")
        check_layer_ids([j for j, _ in rec], L if isinstance(L, int) and L > 0 else 1 << 30,
                        f"{where} merge of block {i}")
        merges[_int_id(i, where, key=True)] = rec
    return removed, merges


def export_pruned(lm, remove, out: str | Path, merges: dict | None = None) -> Path:
    """Write the pruned checkpoint to `out` as one run (staged: a failure leaves `out` as it was). `out` must not be
    (or contain) the source checkpoint folder."""
    out = Path(out)
    src = Path(str(lm.path))
    if src.is_dir() and (out.resolve() == src.resolve() or out.resolve() in src.resolve().parents):
        raise OutputError(f"--out {out} would overwrite the source checkpoint {lm.path}; choose another folder")
    keep = keep_from_remove(remove, lm.anatomy.num_layers)
    merges = merges or {}
    mods = BlockBank(lm.anatomy.layers).modules({i: r for i, r in merges.items() if i in keep})
    with staged(out) as d:
        with pruned_view(lm, keep, mods):
            lm.model.save_pretrained(d, safe_serialization=True)
        lm.tokenizer.save_pretrained(d)
        write_json(d / "prunelens-export.json", {"source": lm.path, "removed": sorted(remove), "kept": keep,
                                                "merges": {str(k): v for k, v in merges.items()}})
    return out
