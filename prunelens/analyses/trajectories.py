"""Reading pruning trajectories (`prunelens prune --out DIR` writes DIR/trajectory.json), tolerant of optional
fields, so every analysis picks removal sets and dense numbers the same way."""
from __future__ import annotations

from pathlib import Path

from ..results import read_json

# Mean 1/K over a task's samples, used only when a trajectory carries neither `chance` nor per-sample K.
_CHANCE = {"arc_easy": None, "arc_challenge": None, "hellaswag": 0.25, "piqa": 0.5, "winogrande": 0.5,
           "boolq": 0.5, "openbookqa": 0.25, "mmlu": 0.25}


def load_trajectory(path) -> dict:
    """A trajectory.json (or its folder), its steps checked: a malformed file is one ValueError naming it."""
    p = Path(path)
    f = p / "trajectory.json" if p.is_dir() else p
    t = read_json(f)
    validate(t, str(f))
    return t


def validate(t, where: str) -> None:
    """Steps are objects with a numeric `ratio` (if any) and `removed` lists of distinct integer layer ids."""
    import math
    import numbers
    if not isinstance(t, dict) or not isinstance(t.get("steps", []), list):
        raise ValueError(f"{where}: not a trajectory (an object with a 'steps' list)")
    L = t.get("num_layers")
    for k, s in enumerate(t.get("steps", [])):
        at = f"{where} step {k + 1}"
        if not isinstance(s, dict):
            raise ValueError(f"{at}: not an object")
        r = s.get("ratio", 0.0)
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not math.isfinite(r):
            raise ValueError(f"{at}: ratio {r!r} is not a number")
        rem = s.get("removed", [])
        if rem is None:
            continue
        if not isinstance(rem, list):
            raise ValueError(f"{at}: 'removed' must be a list of layer ids, got {rem!r}")
        wrong = [i for i in rem if isinstance(i, bool) or not isinstance(i, int)]
        if wrong:
            raise ValueError(f"{at}: layer ids must be integers, got {wrong!r}")
        if len(set(rem)) != len(rem):
            raise ValueError(f"{at}: a layer is named twice in {rem}")
        if isinstance(L, int) and any(not 0 <= i < L for i in rem):
            raise ValueError(f"{at}: layer ids {[i for i in rem if not 0 <= i < L]} out of range 0..{L - 1}")


def steps(traj: dict) -> list[dict]:
    """Steps sorted by ratio (the dense state, if listed, has ratio 0)."""
    return sorted(traj.get("steps", []), key=lambda s: (s.get("ratio", 0.0), len(s.get("removed", []))))


def num_layers(traj: dict) -> int:
    for src in (traj, traj.get("dense") or {}):
        for k in ("num_layers", "L"):
            if src.get(k):
                return int(src[k])
    st = steps(traj)
    for s in st:
        if s.get("ratio"):
            return round(len(s["removed"]) / s["ratio"])
    raise ValueError("trajectory has no num_layers")


def dense(traj: dict) -> dict:
    """Dense metrics: `dense` block if present, else the step with nothing removed."""
    d = traj.get("dense")
    if isinstance(d, dict):
        return d
    for s in steps(traj):
        if not s.get("removed"):
            return s
    return {}


def final_acc(x: dict) -> float:
    """A step's (or dense block's) task accuracy: a scalar `acc`, else the last entry of a per-depth array."""
    a = x.get("acc")
    return float(a[-1] if isinstance(a, list) else a)


def tp_relative(x: dict, L: int) -> float | None:
    if x.get("transition_relative") is not None:
        return float(x["transition_relative"])
    tp = x.get("transition_point")
    return None if tp is None else tp / L


def unsettled(traj: dict) -> bool:
    """A SKIP-Prun trajectory still running: its steps are the best state found per layer count, which a restart
    can still replace (a plain IP trajectory only appends)."""
    return traj.get("status") == "running" and bool((traj.get("params") or {}).get("skip"))


def removed_at(traj: dict, ratio: float) -> list[int]:
    """The removal set of the step whose ratio is closest to `ratio` (ties: fewer layers)."""
    if unsettled(traj):
        raise ValueError("the trajectory is still running (SKIP-Prun: a restart can still replace its steps); let it "
                         "finish, or give --remove")
    st = [s for s in steps(traj) if s.get("removed") is not None]
    if not st:
        raise ValueError("trajectory has no steps")
    return list(min(st, key=lambda s: (abs(s.get("ratio", 0) - ratio), len(s["removed"])))["removed"])


def method(traj: dict) -> str:
    """`method` at the top or in `params` (the prune engineer's schema); SKIP-Prun restarts are marked."""
    p = traj.get("params") or {}
    m = traj.get("method") or p.get("method") or "?"
    return f"{m}+skip" if p.get("skip") else m


def chance(traj: dict) -> float | None:
    for src in (traj, dense(traj)):
        if src.get("chance") is not None:
            return float(src["chance"])
        if src.get("n_options"):
            k = src["n_options"]
            return float(sum(1 / x for x in k) / len(k)) if isinstance(k, list) else 1 / k
    task = str(traj.get("task", "")).split(":")[0]
    if _CHANCE.get(task):
        return _CHANCE[task]
    try:  # ARC has 3-5 options: compute mean 1/K from the same samples the trajectory evaluated
        from ..tasks import load_task
        cfg = {**traj, **traj.get("config", {})}
        t = load_task(traj["task"], split=traj.get("split"), limit=cfg.get("limit"), sample=cfg.get("sample"),
                      seed=cfg.get("seed", 0))
        return sum(1 / s.n_options for s in t.samples) / len(t.samples)
    except Exception:
        return None
