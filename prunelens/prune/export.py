"""Write a pruned model as a standard checkpoint that plain `AutoModelForCausalLM.from_pretrained(DIR)` loads,
without prunelens: the view's renumbered ModuleList gives contiguous parameter names, its config has the sliced
`num_hidden_layers`/`layer_types`, and tied embeddings are saved once and stay tied."""
from __future__ import annotations

from pathlib import Path

from ..results import read_json, write_json
from .merge import BlockBank
from ..model.surgery import keep_from_remove, pruned_view


def step_of(trajectory: str | Path, step: int) -> tuple[list[int], dict]:
    """(removed, merges) of step `step` (1-based; 0 = dense) of a trajectory.json or its folder."""
    p = Path(trajectory)
    t = read_json(p / "trajectory.json" if p.is_dir() else p)
    if not 0 <= step <= len(t["steps"]):
        raise ValueError(f"--step {step}: the trajectory has steps 0..{len(t['steps'])}")
    s = t["dense"] if step == 0 else t["steps"][step - 1]
    merges = {int(i): [(int(j), float(c)) for j, c in r] for i, r in (s.get("merges") or {}).items()}
    return list(s.get("removed", [])), merges


def export_pruned(lm, remove, out: str | Path, merges: dict | None = None) -> Path:
    out = Path(out)
    keep = keep_from_remove(remove, lm.anatomy.num_layers)
    merges = merges or {}
    mods = BlockBank(lm.anatomy.layers).modules({i: r for i, r in merges.items() if i in keep})
    with pruned_view(lm, keep, mods):
        lm.model.save_pretrained(out, safe_serialization=True)
    lm.tokenizer.save_pretrained(out)
    write_json(out / "prunelens-export.json", {"source": lm.path, "removed": sorted(remove), "kept": keep,
                                              "merges": {str(k): v for k, v in merges.items()}})
    return out
