"""`prunelens prune`: a pruning trajectory, each step re-measured with the decision lens."""
from __future__ import annotations

from .common import (task_kw, _common_measure, _common_model, _common_out, _common_task, add_bos_arg, conventions,
                     deprecated_alias, device_map_arg, finite_float, model_inputs, nonneg_float, nonneg_int,
                     nonneg_int_list, open_fraction, positive_int, prepare_out, say, score_kind, unit_interval)

METHOD_NAMES = ["iterative", "shortgpt", "angular", "sleb", "ppl", "taylor", "laco", "mka", "tail", "random",
                "transition-aware"]


def cmd_prune(a) -> int:
    from ..prune.run import prune
    seeds = a.seeds
    # A folder holding a trajectory of this command is resumed (its model/data/parameter key is checked there).
    prepare_out(a, *model_inputs(a), resume=("trajectory.json", "seed_*/trajectory.json"))
    say(f"prune: {a.method} on {a.task}, loading task and model {a.model} ...")
    task_obj = None
    if a.letters is not None or a.permute is not None:      # the letter controls (tasks/controls.py)
        from ..tasks import load_task
        task_obj = load_task(a.task, **task_kw(a))
    trajs = prune(a.model, a.task, a.method, a.out, ratio=a.ratio, steps=a.remove_count, fmt=a.format, split=a.split,
                  data_dir=a.data_dir, limit=a.limit, sample=a.sample, seed=a.seed, seeds=seeds, calib=a.calib,
                  calib_limit=a.calib_limit, skip=a.skip, skip_delta=a.skip_delta, skip_restarts=a.skip_restarts,
                  heuristic=a.heuristic, laco_c=a.laco_c, laco_i=a.laco_i, laco_t=a.laco_t, laco_lo=a.laco_lo,
                  mka_lambda=a.mka_lambda, score_kind=score_kind(a), margin=a.margin, tau=a.tau, n_boot=a.n_boot,
                  batch_size=a.batch_size, cache_mb=a.cache_mb, naive=a.naive, device=a.device, dtype=a.dtype,
                  cache_dir=a.cache_dir, add_bos=add_bos_arg(a), task_obj=task_obj, device_map=device_map_arg(a),
                  offload_folder=a.offload_folder, trust_remote_code=a.trust_remote_code, overwrite=a.overwrite)
    from ..metrics.estimators import estimators_brief
    for t in trajs:
        d = t["dense"]
        safe = d.get("predicted_safe_ratio")
        print(f"{t['params']['method']} on {t['task']}: dense acc={d['acc']:.3f} TP={d['transition_point']} "
              f"(paper's safe ratio (L - TP)/L: {'none, no TP' if safe is None else f'{safe:.2f}'}); {t['status']}")
        print(f"  dense {estimators_brief(d.get('estimators'))}")
        for s in t["steps"]:
            print(f"  ratio {s['ratio']:.2f} removed {s['removed']}: acc={s['acc']:.3f} "
                  f"[{s['acc_ci'][0]:.3f}, {s['acc_ci'][1]:.3f}] DM={s['dm_final']:.3f}; "
                  f"{estimators_brief(s.get('estimators'))}")
    print(f"results: {a.out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("prune", help="pruning trajectory (IP/SKIP-Prun and baselines), re-measured every step")
    _common_model(p)
    _common_task(p)
    p.add_argument("--method", required=True, choices=METHOD_NAMES, help="pruning method")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ratio", type=open_fraction,
                   help="fraction of layers removed (0 < r < 1): ceil(r*L) of the L layers are removed")
    g.add_argument("--remove-count", type=positive_int, metavar="N", help="number of layers removed")
    deprecated_alias(g, "--steps", "--remove-count", "remove_count", type=positive_int)
    _common_out(p, help="run folder; a folder holding an unfinished run of the same model, data and options is "
                        "resumed, --overwrite starts afresh")
    p.add_argument("--skip", action="store_true", help="SKIP-Prun restarts (iterative only)")
    p.add_argument("--skip-delta", type=nonneg_float, default=0.05, help="accuracy drop that counts as deterioration")
    p.add_argument("--skip-restarts", type=nonneg_int, default=4, help="restart budget")
    p.add_argument("--seeds", default="0", type=nonneg_int_list,
                   help="random: comma-separated seeds (one trajectory each)")
    p.add_argument("--calib", default="task",
                   help="calibration prompts: 'task' (the task's own prompts), another task name, or a text file")
    p.add_argument("--calib-limit", type=positive_int, default=None, help="first N calibration prompts")
    p.add_argument("--heuristic", action="store_true", help="ppl/taylor: keep the first 4 and last 2 blocks")
    p.add_argument("--laco-c", type=positive_int, default=3, help="LaCo: blocks merged per operation")
    p.add_argument("--laco-i", type=nonneg_int, default=2, help="LaCo: interval after an accepted merge")
    p.add_argument("--laco-t", type=finite_float, default=0.65, help="LaCo: similarity threshold")
    p.add_argument("--laco-lo", type=nonneg_int, default=1, help="LaCo: lowest block id that may absorb a merge")
    p.add_argument("--mka-lambda", type=unit_interval, default=0.5, help="MKA: weight of the lower block in a merge")
    _common_measure(p)
    p.add_argument("--tau", type=nonneg_float, default=0.0, help="Transition Point tolerance")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the CIs")
    p.add_argument("--cache-mb", type=nonneg_float, default=512, help="bound of the prefix hidden-state cache")
    p.add_argument("--naive", action="store_true", help="no prefix reuse: full recompute every step (benchmark)")
    p.add_argument("--cache-dir", default=None,
                   help="share exact per-depth scores/BI between runs on the same model, samples and calibration")
    p.set_defaults(func=cmd_prune)
    conventions(p)
