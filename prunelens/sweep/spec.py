"""Sweep specs: a YAML grid of models x tasks x methods x seeds, expanded into independent runs.

    out: runs/study1                 # optional (the CLI's --out wins)
    models: [gemma-3-270m, /ckpt/llama-8b]
    tasks: [arc_easy, piqa]          # one task per run
    methods:                         # a bare name or a mapping; `name` labels the run folder
      - dense                        # the unpruned model
      - {name: drop2, remove: [16, 17]}     # fixed layer ids
      - {name: last4, last: 4}              # the last N layers
      - {name: rand4, random: 4}            # N layers drawn with the run's seed
      - {name: mine, callable: "pkg.module:fn", args: {k: 4}}   # fn(lm, task, seed, **args) -> layer ids to remove
    seeds: [0]                       # the random methods' seed (and the few-shot seed when num_fewshot > 0)
    eval: {limit: 200, data_dir: ../shared/data, num_fewshot: 0, batch_size: 16, split: null}
    load: {device: auto, dtype: auto, device_map: null}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

METHOD_KEYS = {"name", "remove", "last", "random", "callable", "args"}
EVAL_KEYS = {"limit", "data_dir", "num_fewshot", "batch_size", "split", "fewshot_split"}
LOAD_KEYS = {"device", "dtype", "device_map", "offload_folder", "trust_remote_code"}
TOP_KEYS = {"out", "models", "tasks", "methods", "seeds", "eval", "load"}


@dataclass(frozen=True)
class Run:
    model: str
    task: str
    method: dict
    seed: int
    eval: dict = field(default_factory=dict)
    load: dict = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        slug = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", str(s)).strip("_")[-60:]  # noqa: E731
        model = slug(Path(self.model).name or self.model)
        return f"{model}__{slug(Path(self.task).name)}__{slug(self.method['name'])}__s{self.seed}"


def _method(m) -> dict:
    if isinstance(m, str):
        return {"name": m}
    if not isinstance(m, dict) or "name" not in m:
        raise ValueError(f"sweep method {m!r}: a name or a mapping with 'name'")
    bad = set(m) - METHOD_KEYS
    if bad:
        raise ValueError(f"sweep method {m['name']!r}: unknown keys {sorted(bad)}; allowed {sorted(METHOD_KEYS)}")
    if sum(k in m for k in ("remove", "last", "random", "callable")) > 1:
        raise ValueError(f"sweep method {m['name']!r}: give one of remove/last/random/callable")
    for k in ("last", "random"):
        if k in m and (isinstance(m[k], bool) or not isinstance(m[k], int) or m[k] < 1):
            raise ValueError(f"sweep method {m['name']!r}: {k} must be an integer >= 1, got {m[k]!r}")
    if "remove" in m:
        r = m["remove"]
        ids = [x.strip() for x in r.split(",") if x.strip()] if isinstance(r, str) else r
        if not isinstance(ids, list) or any(isinstance(x, bool) or not str(x).lstrip("-").isdigit() for x in ids):
            raise ValueError(f"sweep method {m['name']!r}: remove must be a list of layer ids, got {r!r}")
        if len({int(x) for x in ids}) != len(ids):
            raise ValueError(f"sweep method {m['name']!r}: remove names a layer twice: {r!r}")
    return dict(m)


def _list(spec, key, default=None):
    v = spec.get(key, default)
    if v is None:
        raise ValueError(f"sweep spec: '{key}' is required")
    return v if isinstance(v, list) else [v]


def expand(spec: dict, base: Path | None = None) -> list[Run]:
    """All runs of a spec dict, in a stable order (model, task, method, seed). Relative paths in the spec are
    resolved against `base` (the spec file's folder)."""
    bad = set(spec) - TOP_KEYS
    if bad:
        raise ValueError(f"sweep spec: unknown keys {sorted(bad)}; allowed {sorted(TOP_KEYS)}")
    ev, ld = dict(spec.get("eval") or {}), dict(spec.get("load") or {})
    for what, d, allowed in (("eval", ev, EVAL_KEYS), ("load", ld, LOAD_KEYS)):
        if set(d) - allowed:
            raise ValueError(f"sweep spec: unknown {what} keys {sorted(set(d) - allowed)}; allowed {sorted(allowed)}")

    def rel(p):
        q = Path(str(p)).expanduser()
        return str((base / q).resolve()) if base and not q.is_absolute() and (base / q).exists() else str(p)

    if ev.get("data_dir"):
        ev["data_dir"] = rel(ev["data_dir"])
    models = [rel(m) for m in _list(spec, "models")]
    tasks = [rel(t) if str(t).endswith((".yaml", ".yml", ".jsonl")) else str(t) for t in _list(spec, "tasks")]
    methods = [_method(m) for m in _list(spec, "methods", ["dense"])]
    names = [m["name"] for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"sweep spec: method names must be unique, got {names}")
    seeds = [int(s) for s in _list(spec, "seeds", [0])]
    return [Run(m, t, meth, s, ev, ld) for m in models for t in tasks for meth in methods for s in seeds]


def load_spec(path) -> tuple[list[Run], dict]:
    import yaml
    path = Path(path)
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a sweep spec is a YAML mapping")
    return expand(spec, path.parent.resolve()), spec
