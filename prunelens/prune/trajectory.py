"""Run, store and resume a pruning trajectory (the paper's Figures 2/4/12, Tables 2-4).

`DIR/trajectory.json` is rewritten atomically after every measured state, together with the small exact caches in
`DIR/.resume-cache.npz` (numpy arrays + a JSON index, read without pickle; deleted once the run is complete), so a
run killed at any moment and restarted with the same command finishes with the same trajectory. A stored
trajectory is resumed only when its key matches: the parameters, the task/sample header and the `fingerprint`
(model weights identity, samples and calibration digests); anything else is refused, never silently mixed.
Everything non-deterministic (wall times, cache statistics) lives under `wall_s` and `runtime`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..metrics.estimators import estimators_brief
from ..results import now, read_json, versions, write_json
from .cache import CacheFileError, PrefixCache
from .evaluate import keep_of, measure_state
from .merge import BlockBank
from .methods import METHODS, _bi

VOLATILE = ("wall_s", "runtime", "date", "versions", "resumed_under")
CACHE_FILE = ".resume-cache.npz"
# Header fields that must match for a stored trajectory to be resumed (with `params` and `fingerprint`).
KEY_FIELDS = ("model_path", "num_layers", "task", "split", "n_samples", "limit", "sample", "params", "fingerprint")
_KEY_WORDS = {"model_path": "model", "num_layers": "layer count", "n_samples": "sample count", "params": "parameters",
              "fingerprint.model": "model weights", "fingerprint.samples": "task samples",
              "fingerprint.calib": "calibration prompts"}


def resume_mismatch(stored: dict, header: dict, lm=None) -> list[str]:
    """The key fields in which a stored trajectory differs from this run's header (empty: it may be resumed).
    lm: the loaded model; a stored model identity made by the rule before 2026-12-08 is then accepted when it is
    this model's by that rule (`fingerprint.legacy_model_identity`: the same files, byte for byte)."""
    diff = _mismatch(stored, header)
    if lm is not None and "model weights" in diff:
        from ..fingerprint import legacy_model_identity
        if (stored.get("fingerprint") or {}).get("model") == legacy_model_identity(lm):
            diff.remove("model weights")
    return diff


def _mismatch(stored: dict, header: dict) -> list[str]:
    diff = []
    for k in KEY_FIELDS:
        if k not in header:
            continue
        if k == "fingerprint" and k not in stored:
            diff.append("fingerprint (none stored: written before model/data fingerprints, cannot be verified)")
        elif stored.get(k) != header[k]:
            if k == "fingerprint" and isinstance(stored.get(k), dict):
                diff += [_KEY_WORDS.get(f"{k}.{f}", f"{k}.{f}") for f in sorted(set(stored[k]) | set(header[k]))
                         if stored[k].get(f) != header[k].get(f)]
            else:
                diff.append(_KEY_WORDS.get(k, k))
    return diff


def _cache_key(header: dict) -> str:
    import hashlib
    import json
    return hashlib.sha256(json.dumps({k: header.get(k) for k in KEY_FIELDS}, sort_keys=True,
                                     default=str).encode()).hexdigest()[:20]


@dataclass
class Ctx:
    lm: object
    samples: list
    fmt: str
    calib: object
    cache: PrefixCache
    params: dict
    n_remove: int
    score_kind: str = "raw"
    margin: str = "logit"
    tau: float = 0.0
    n_boot: int = 1000
    seed: int = 0
    batch_size: int = 16
    add_bos: bool | None = None
    dense: dict | None = None
    memo: dict = field(default_factory=dict)

    def __post_init__(self):
        self.L = self.lm.anatomy.num_layers
        self.bank = BlockBank(self.lm.anatomy.layers)
        self.gold = np.array([s.gold for s in self.samples])
        self.n_options = np.array([s.n_options for s in self.samples])
        kmax = int(self.n_options.max())
        self.char_len = np.full((len(self.samples), kmax), np.nan)
        for i, s in enumerate(self.samples):
            self.char_len[i, :s.n_options] = [len(c) for c in s.choices]


def _save(ctx, out: Path, traj: dict, t0: float) -> None:
    traj["runtime"] = {"cache": ctx.cache.stats(), "wall_s_this_process": round(time.time() - t0, 2)}
    ctx.cache.save_small(out / CACHE_FILE, _cache_key(traj))
    write_json(out / "trajectory.json", traj)


def _record(ctx, removed, merges, scores=None, **extra) -> dict:
    t = time.time()
    rec = measure_state(ctx, removed, merges)
    if scores is not None:
        rec["scores"] = {str(k): float(v) for k, v in sorted(scores.items())}
    rec.update(extra)
    rec["wall_s"] = round(time.time() - t, 3)
    return rec


def run_trajectory(ctx: Ctx, method: str, out: str | Path, header: dict, on_state=None, log=print,
                   overwrite: bool = False) -> dict:
    """Run `method` to `ctx.n_remove` removed blocks, resuming `out/trajectory.json` if it exists.

    header: JSON-ready description (model, task, params, fingerprint...); a stored trajectory with a different key
    (`KEY_FIELDS`) is an error rather than a silent mix. overwrite: ignore a stored trajectory and start afresh (it is
    replaced when the first new state is stored). on_state(traj): called after every stored state (tests simulate
    kills with it)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "trajectory.json"
    t0 = time.time()
    if path.is_file() and not overwrite:
        traj = read_json(path)
        if not isinstance(traj, dict) or not isinstance(traj.get("steps"), list):
            raise ValueError(f"{path} is not a prunelens trajectory; use another --out or --overwrite")
        diff = resume_mismatch(traj, header, ctx.lm)
        if diff:
            raise ValueError(f"{path} is another run, made with different {', '.join(diff)}: use another --out, "
                             f"or --overwrite to replace it")
        key = _cache_key(traj)          # the cache was written under the stored fingerprint
        if (fp := header.get("fingerprint")) and traj["fingerprint"].get("model") != fp.get("model"):
            log("[prune] stored model identity is of the rule before 2026-12-08 (same files): rewritten")
            traj["fingerprint"] = {**traj["fingerprint"], "model": fp["model"]}
        try:
            used = ctx.cache.load_small(out / CACHE_FILE, key)
        except CacheFileError as e:
            log(f"[prune] ignoring {e}; its numbers are recomputed")
            used = False
        log(f"[prune] resuming {path}: {len(traj['steps'])} steps done"
            + ("" if used or not (out / CACHE_FILE).is_file() else " (stored cache of another run ignored)"))
        # same weights and data, other libraries (a new venv): allowed, but said and recorded, since a step measured
        # after it may differ in the last float digits from one measured before
        # (SKIP-Prun's steps are the best state per count, rebuilt from its search: from_node says where the new
        # measurements start; a finished run measures nothing more and records nothing)
        if traj.get("status") == "running" and (was := traj.get("versions")) and (
                changed := {k: (was.get(k), v) for k, v in versions().items() if was.get(k) != v}):
            log("[prune] resumed under other library versions than the run was started with: "
                + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
            traj.setdefault("resumed_under", []).append(
                {"date": now(), "from_step": len(traj["steps"]), "versions": versions(),
                 **({"from_node": len(traj["search"]["visited"])} if traj.get("search") else {})})
    else:
        traj = {"schema": "prunelens.trajectory/1", **header, "n_remove_target": ctx.n_remove, "status": "running",
                "dense": None, "steps": [], "date": now(), "versions": versions()}
    if traj["dense"] is None:
        log(f"[prune] measuring the dense model ({len(ctx.samples)} samples, every depth) ...")
        traj["dense"] = _record(ctx, [], {})
        tp = traj["dense"]["transition_point"]
        # the paper's rule; no TP is no prediction (not "nothing can go")
        traj["dense"]["predicted_safe_ratio"] = None if tp is None else (ctx.L - tp) / ctx.L
        _save(ctx, out, traj, t0)
        on_state and on_state(traj)
    ctx.dense = traj["dense"]
    if header["params"].get("skip"):
        _run_skip(ctx, out, traj, t0, on_state, log)
    else:
        fn = METHODS[method]
        while traj["status"] == "running":
            st = traj["steps"][-1] if traj["steps"] else {"removed": [], "merges": {}}
            if len(st["removed"]) >= ctx.n_remove:
                break
            t = time.time()
            prop = fn(ctx, st)
            if prop is None:
                traj["status"] = "stopped: the method has no further candidate"
                break
            rec = _record(ctx, prop["removed"], prop.get("merges"), prop.get("scores"),
                          **{k: prop[k] for k in ("method_state", "phase") if k in prop})
            rec["wall_s"] = round(time.time() - t, 3)
            traj["steps"].append(rec)
            log(f"[prune] {method} step {len(traj['steps'])}: removed {rec['removed']} acc={rec['acc']:.3f} "
                f"DM={rec['dm_final']:.3f}; {estimators_brief(rec.get('estimators'))} ({rec['wall_s']:.1f}s)")
            _save(ctx, out, traj, t0)
            on_state and on_state(traj)
    if traj["status"] == "running":
        traj["status"] = "complete"
    _save(ctx, out, traj, t0)
    (out / CACHE_FILE).unlink(missing_ok=True)
    return traj


# ------------------------------------------------------------------------------------------------ SKIP-Prun
def _untried(ctx, node) -> list[int]:
    return [i for i in keep_of(node["removed"], ctx.L) if i not in node["tried"]]


def _best_steps(visited: list[dict]) -> list[dict]:
    """For each count of removed blocks, the best visited state (highest acc, earliest on ties)."""
    best: dict[int, dict] = {}
    for v in visited[1:]:
        n = len(v["removed"])
        if n not in best or v["acc"] > best[n]["acc"]:
            best[n] = v
    return [best[n] for n in sorted(best)]


def _run_skip(ctx, out, traj, t0, on_state, log) -> None:
    """IP with SKIP-Prun restarts (method.md): a step whose accuracy falls by more than delta kills that edge and
    the search restarts from the best-scoring state with fewer blocks removed that still has untried candidates."""
    p = traj["params"]
    delta, budget = p["skip_delta"], p["skip_restarts"]
    s = traj.setdefault("search", {"visited": [dict(traj["dense"], node=0, parent=None, tried=[], bi=None)],
                                   "current": 0, "dead_edges": [], "restarts": []})
    V = s["visited"]
    seen = {frozenset(v["removed"]) for v in V}

    def save():
        traj["steps"] = [dict(v, state=v["node"]) for v in _best_steps(V)]
        _save(ctx, out, traj, t0)
        on_state and on_state(traj)

    while True:
        cur = V[s["current"]]
        if len(cur["removed"]) >= ctx.n_remove:
            break
        if cur["bi"] is None:
            cur["bi"] = {str(k): v for k, v in _bi(ctx, {"removed": cur["removed"], "merges": {}}).items()}
            save()
        cands = sorted(_untried(ctx, cur), key=lambda i: (cur["bi"][str(i)], i))
        cands_new = [c for c in cands if frozenset(cur["removed"] + [c]) not in seen]
        if not cands_new:
            cur["tried"] += cands            # every remaining edge leads to a visited set
            r = _restart_point(ctx, V, len(cur["removed"]) + 1)
            if r is None:
                traj["status"] = "stopped: no untried candidates left"
                break
            s["current"] = r
            continue
        c = cands_new[0]
        cur["tried"].append(c)
        t = time.time()
        rec = _record(ctx, cur["removed"] + [c], {}, {int(k): v for k, v in cur["bi"].items()})
        rec.update(node=len(V), parent=cur["node"], tried=[], bi=None, wall_s=round(time.time() - t, 3))
        V.append(rec)
        seen.add(frozenset(rec["removed"]))
        bad = cur["acc"] - rec["acc"] > delta
        msg = f"[prune] skip node {rec['node']}: removed {rec['removed']} acc={rec['acc']:.3f}"
        if bad and len(s["restarts"]) < budget:
            s["dead_edges"].append([cur["node"], c])
            rec["dead"] = True
            r = _restart_point(ctx, V, len(rec["removed"]))
            s["restarts"].append({"after_node": rec["node"], "dead_edge": [cur["node"], c], "from_node": r,
                                  "from_removed": None if r is None else V[r]["removed"]})
            msg += f" deteriorated by {cur['acc'] - rec['acc']:.3f} > {delta}: restart from node {r}"
            if r is None:
                traj["status"] = "stopped: no state to restart from"
                log(msg)
                save()
                break
            s["current"] = r
        else:
            s["current"] = rec["node"]
        log(msg)
        save()


def _restart_point(ctx, V, n_removed: int) -> int | None:
    """Best-scoring state (acc, then more removed, then earlier) with < n_removed removed and untried candidates."""
    ok = [v for v in V if len(v["removed"]) < n_removed and _untried(ctx, v)]
    if not ok:
        return None
    return max(ok, key=lambda v: (v["acc"], len(v["removed"]), -v["node"]))["node"]
