"""Which layers to keep for evaluating a pruned view without exporting: `--remove 3,7`, or step K of a `prunelens
prune` trajectory (its `removed` layers and any LaCo/MKA merged blocks, read with `prune.export.step_of`)."""
from __future__ import annotations

from ..model.surgery import keep_from_remove


def parse_ids(text) -> list[int]:
    if text is None or text == "":
        return []
    if not isinstance(text, str):
        return [int(x) for x in text]
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise ValueError(f"layer ids must be comma-separated integers, got {text!r}") from None


def resolve_view(lm, remove=None, trajectory=None, step=None) -> tuple[list[int] | None, dict, dict]:
    """(kept original layer ids or None for the dense model, merged modules {id: block}, JSON description)."""
    L = lm.anatomy.num_layers
    if remove and trajectory:
        raise ValueError("give either --remove or --trajectory/--step, not both")
    merges: dict = {}
    if trajectory is not None:
        if step is None:
            raise ValueError("--trajectory needs --step K")
        from ..prune.export import step_of
        removed, merges = step_of(trajectory, int(step))
    else:
        removed = parse_ids(remove)
    keep = keep_from_remove(removed, L)
    if keep == list(range(L)) and not merges:
        return None, {}, {}
    mods = {}
    if merges:
        from ..prune.merge import BlockBank
        mods = BlockBank(lm.anatomy.layers).modules({i: r for i, r in merges.items() if i in keep})
    desc = {"keep": keep, "removed": sorted(set(range(L)) - set(keep)),
            "merges": {str(k): v for k, v in merges.items()} or None,
            "trajectory": str(trajectory) if trajectory else None, "step": step}
    return keep, mods, desc
