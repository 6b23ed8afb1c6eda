"""`prune(...)`: validate every option, load task/model, build the calibration set, run (or resume) the trajectory.

All option errors are raised before any model forward: a typo costs a second, not a step of compute.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..engine.autobatch import is_auto
from .cache import CacheFileError, PrefixCache
from .calib import build_calib, file_prompts, resolve_add_bos, sample_prompts
from .evaluate import n_to_remove
from .methods import METHODS


def _finite(name: str, v, lo=None, hi=None) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must lie in [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                         f", got {v!r}")


def _count(name: str, v, lo: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


def check_values(*, tau=0.0, n_boot=1000, batch_size=16, cache_mb=512, laco_c=3, laco_i=2, laco_t=0.65,
                 laco_lo=1, mka_lambda=0.5, calib_limit=None) -> None:
    """Numbers of the pruning options: finite and in range (NaN compares False to every bound, so it is named)."""
    _finite("--tau", tau, 0)
    _count("--n-boot", n_boot)
    if not (isinstance(batch_size, str) and batch_size.strip().lower() == "auto"):   # auto: resolved in `prune`
        _count("--batch-size", batch_size)
    _finite("--cache-mb", cache_mb, 0)
    _count("--laco-c", laco_c, 2)
    _count("--laco-i", laco_i, 0)
    _count("--laco-lo", laco_lo, 0)
    _finite("--laco-t", laco_t, -1, 1)
    _finite("--mka-lambda", mka_lambda, 0, 1)
    if calib_limit is not None:
        _count("--calib-limit", calib_limit)


def check_options(method: str, ratio, steps, skip: bool, skip_delta: float, skip_restarts: int, seeds) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(sorted(METHODS))}")
    if (ratio is None) == (steps is None):
        raise ValueError("give exactly one of --ratio and --remove-count")
    if ratio is not None and not 0 < ratio < 1:
        raise ValueError(f"--ratio must lie strictly between 0 and 1, got {ratio}")
    if steps is not None and steps < 1:
        raise ValueError(f"--remove-count must be >= 1, got {steps}")
    if skip and method != "iterative":
        raise ValueError("--skip (SKIP-Prun) applies to --method iterative only")
    _finite("--skip-delta", skip_delta, 0)
    _count("--skip-restarts", skip_restarts, 0)
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds repeats a seed: {list(seeds)}")


def _num_layers(model_path: str) -> int | None:
    try:
        from transformers import AutoConfig
        cfg = AutoConfig.from_pretrained(model_path)
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        return getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None)
    except Exception:  # noqa: BLE001 - the model load below reports real problems
        return None


def prune(model: str, task: str, method: str, out: str | Path, *, ratio: float | None = None,
          steps: int | None = None, fmt: str = "cloze", split=None, data_dir=None, limit=None, sample=None,
          seed: int = 0, seeds=(0,), calib: str = "task", calib_limit: int | None = None, skip: bool = False,
          skip_delta: float = 0.05, skip_restarts: int = 4, heuristic: bool = False, laco_c: int = 3,
          laco_i: int = 2, laco_t: float = 0.65, laco_lo: int = 1, mka_lambda: float = 0.5,
          score_kind: str = "raw", margin: str = "logit", tau: float = 0.0, n_boot: int = 1000,
          batch_size: int = 16, cache_mb: float = 512, naive: bool = False, device="auto", dtype="auto",
          add_bos=None, lm=None, task_obj=None, on_state=None, log=print, plots: bool = True,
          cache_dir: str | None = None, device_map=None, offload_folder=None,
          trust_remote_code: bool = False, overwrite: bool = False) -> list[dict]:
    """Returns one trajectory dict per seed (random uses every seed in `seeds`, other methods the first).

    cache_dir: share the small exact caches (per-depth scores, BI, NLL) between runs on the same model, samples,
    format and calibration set (a file named by their fingerprint), so e.g. every method reuses one dense pass.
    overwrite: start afresh even if `out` holds a trajectory (else a stored run with the same key is resumed, and
    one with another key is refused)."""
    from ..model import load_model
    from ..fingerprint import model_identity, samples_digest, tokens_digest
    from ..model.load import resolve_model_path
    from ..tasks import load_task
    from ..tasks.limits import check_lengths
    from .plots import plot_trajectory
    from .trajectory import Ctx, run_trajectory

    seeds = list(seeds) if method == "random" else list(seeds)[:1]
    check_options(method, ratio, steps, skip, skip_delta, skip_restarts, seeds)
    check_values(tau=tau, n_boot=n_boot, batch_size=batch_size, cache_mb=cache_mb, laco_c=laco_c, laco_i=laco_i,
                 laco_t=laco_t, laco_lo=laco_lo, mka_lambda=mka_lambda, calib_limit=calib_limit)
    task_obj = task_obj or load_task(task, split=split, data_dir=data_dir, limit=limit, sample=sample, seed=seed)
    if not task_obj.samples:
        raise ValueError(f"task {task!r} has no samples")
    if lm is None:
        L = _num_layers(resolve_model_path(model, log=log))
        if L is not None:
            n_to_remove(L, ratio, steps)           # fail on "remove every layer" before loading weights
        lm = load_model(model, device=device, dtype=dtype, device_map=device_map, offload_folder=offload_folder,
                        trust_remote_code=trust_remote_code, log=log)
    L = lm.anatomy.num_layers
    n_remove = n_to_remove(L, ratio, steps)
    add_bos = resolve_add_bos(lm, add_bos)
    check_lengths(lm, task_obj.samples, fmt, add_bos=add_bos, what=task_obj.name)
    auto = is_auto(batch_size)
    if auto:
        batch_size = auto_batch_size(lm, task_obj.samples, fmt, add_bos, out, log)
    if calib == "task":
        prompts, src = sample_prompts(lm.tokenizer, task_obj.samples, fmt, add_bos), f"task:{task_obj.name}"
    elif Path(calib).is_file():
        prompts, src = file_prompts(lm.tokenizer, calib, add_bos), f"file:{calib}"
    else:
        other = load_task(calib, data_dir=data_dir, limit=calib_limit, seed=seed)
        check_lengths(lm, other.samples, fmt, add_bos=add_bos, what=f"--calib {calib}")
        prompts, src = sample_prompts(lm.tokenizer, other.samples, fmt, add_bos), f"task:{other.name}"
    cal = build_calib(lm, prompts, src, limit=calib_limit, batch_size=batch_size)
    fingerprint = {"model": model_identity(lm), "samples": samples_digest(task_obj.samples),
                   "calib": tokens_digest(p for b in cal.batches for p in b[0].tolist())}
    results = []
    for s in seeds:
        params = {"method": method, "ratio": ratio, "steps": steps, "n_remove": n_remove, "format": fmt,
                  "score": score_kind, "margin": margin, "tau": tau, "n_boot": n_boot, "boot_seed": seed,
                  "calib": src, "calib_limit": calib_limit, "calib_prompts": cal.n_prompts,
                  "calib_tokens": cal.n_tokens, "add_bos": add_bos, "skip": skip,
                  **({"skip_delta": skip_delta, "skip_restarts": skip_restarts} if skip else {}),
                  **({"seed_prune": s} if method == "random" else {}),
                  **({"heuristic": heuristic} if method in ("ppl", "taylor") else {}),
                  **({"laco_c": laco_c, "laco_i": laco_i, "laco_t": laco_t, "laco_lo": laco_lo}
                     if method == "laco" else {}),
                  **({"mka_lambda": mka_lambda} if method == "mka" else {}),
                  # an auto size is part of the key: stored states are keyed by batches (a fixed size is not, so
                  # trajectories written before this stay resumable)
                  **({"batch_size": batch_size, "batch_size_auto": True} if auto else {})}
        header = {"model": model, "model_path": lm.path, "model_class": lm.anatomy.model_class, "num_layers": L,
                  "task": task_obj.name, "split": task_obj.split, "source": task_obj.source,
                  "n_samples": len(task_obj.samples), "limit": limit, "sample": sample, "params": params,
                  "fingerprint": fingerprint}
        cache = PrefixCache(int(cache_mb * 2**20), enabled=not naive)
        shared = (_shared_cache_file(cache_dir, lm, task_obj, fmt, cal, batch_size, add_bos, fingerprint)
                  if cache_dir else None)
        if shared is not None:
            try:
                cache.load_small(shared, shared.stem)
            except CacheFileError as e:
                log(f"[prune] ignoring {e}")
        ctx = Ctx(lm, task_obj.samples, fmt, cal, cache, params,
                  n_remove, score_kind=score_kind, margin=margin, tau=tau, n_boot=n_boot, seed=seed,
                  batch_size=batch_size, add_bos=add_bos)
        d = Path(out) if len(seeds) == 1 else Path(out) / f"seed_{s}"
        traj = run_trajectory(ctx, method, d, header, on_state=on_state, log=log, overwrite=overwrite)
        if shared is not None:
            cache.save_small(shared, shared.stem)
        if not plots:
            results.append(traj)
            continue
        try:
            plot_trajectory(traj, d)
        except Exception as e:  # noqa: BLE001 - a plotting problem must not lose a finished trajectory
            log(f"[prune] plotting failed: {e}")
        results.append(traj)
    return results


def auto_batch_size(lm, samples, fmt, add_bos, out, log=print) -> int:
    """`--batch-size auto` for a trajectory: every state must batch identically (the prefix cache and the resume
    cache are keyed by forward calls), so the size is found once, by the engine's out-of-memory search on the longest
    questions, and then fixed. A run being resumed keeps the size it recorded."""
    from ..engine.autobatch import fixed
    from ..engine.score import score
    from ..results import read_json
    for f in [Path(out) / "trajectory.json", *sorted(Path(out).glob("seed_*/trajectory.json"))]:
        try:
            b = (read_json(f).get("params") or {}).get("batch_size")
        except (OSError, ValueError):
            continue
        if isinstance(b, int) and b >= 1:
            log(f"[prune] --batch-size auto: resuming with the recorded size {b}")
            return b
    longest = sorted(samples, key=lambda x: -max(len(c) + len(t) for c, t in zip(x.contexts, x.continuations))
                     if fmt == "cloze" else -len(x.letter_prompt))[:64]
    score(lm, longest, fmt, depths=[lm.anatomy.num_layers], batch_size="auto", add_bos=add_bos, progress=False)
    b = fixed("auto", lm)
    log(f"[prune] --batch-size auto: {b} (the largest that fit the longest questions), fixed for the whole run")
    return b


def _shared_cache_file(cache_dir, lm, task_obj, fmt, cal, batch_size, add_bos, fingerprint) -> Path:
    """The shared cache of this (model weights, samples, format, calibration) key; .npz, read without pickle."""
    import hashlib
    h = hashlib.sha256(repr((lm.path, lm.anatomy.num_layers, task_obj.name, task_obj.split, fmt, batch_size, add_bos,
                             [s.id for s in task_obj.samples], cal.source, cal.n_prompts, cal.n_tokens,
                             sorted(fingerprint.items()))).encode())
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return Path(cache_dir) / f"{h.hexdigest()[:16]}.npz"
