"""`prunelens analyze`: the decision lens on one model and task."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, add_bos_arg, any_int, conventions,
                     device_map_arg, load_lm, model_inputs, nonneg_float, positive_int, prepare_out, say, score_kind,
                     task_kw)


def cmd_analyze(a) -> int:
    from ..analyses.run import _journal
    from ..analyze import CHUNK, analyze
    from ..results import staged
    from ..tasks import load_task
    from ..tasks.limits import check_lengths
    out = prepare_out(a, *model_inputs(a))
    # Task, then model, then the lengths of every prompt: all before any compute.
    say(f"analyze: loading task {a.task} ...")
    task = load_task(a.task, **task_kw(a))
    if not task.samples:
        raise ValueError(f"task {a.task!r} split {task.split!r} has no samples")
    lm = load_lm(a)
    check_lengths(lm, task.samples, a.format, add_bos=add_bos_arg(a), what=task.name)
    # finished parts of a killed run (the raw scores: score kind and margin do not change them)
    j = _journal(out, "analyze", lm, task.samples, fmt=a.format, batch_size=a.batch_size, add_bos=add_bos_arg(a),
                 chunk=CHUNK)
    with staged(out) as d:
        res = analyze(a.model, a.task, a.format, d, split=a.split, data_dir=a.data_dir, limit=a.limit,
                      sample=a.sample, seed=a.seed, device=a.device, dtype=a.dtype, score_kind=score_kind(a),
                      margin=a.margin, tau=a.tau, batch_size=a.batch_size, n_boot=a.n_boot,
                      trust_remote_code=a.trust_remote_code, add_bos=add_bos_arg(a), device_map=device_map_arg(a),
                      offload_folder=a.offload_folder, lm=lm, task_obj=task, journal=j)
    j.close()
    tp = res["transition_point"]
    print(f"{res['task']} ({res['format']}, n={res['n_samples']}): acc={res['acc']:.3f} "
          f"[{res['acc_ci'][0]:.3f}, {res['acc_ci'][1]:.3f}]"
          + (f", acc_norm={res['acc_norm']:.3f}" if "acc_norm" in res else "")
          + f", final DM={res['dm_final']:.3f}, Transition Point="
          + (f"{tp} of {res['num_layers']} ({res['transition_relative']:.2f})" if tp is not None else "none")
          + (f", 95% CI {_tp_ci(res)}" if "tp_ci" in res else ""))
    _warn_chance(res)
    _print_estimators(res)
    print(f"results: {a.out}/analysis.json, {a.out}/samples.csv; plots: "
          + ", ".join(f"{a.out}/{p}" for p in res.get("plots", [])))
    return 0


def _warn_chance(r: dict) -> None:
    if r.get("above_chance") is False:
        from ..metrics.chance import judge
        print(f"warning: at chance: {judge(r['acc'], r['n_samples'], r['chance_levels'])[1]}. The model decides "
              f"nothing measurable here; transition depths, critical ratios and plans on this task mean nothing")


def _tp_ci(r: dict) -> str:
    from ..metrics import tp_ci_text
    return tp_ci_text(r["tp_ci"]) + (f" (no TP in {r['tp_none_frac']:.0%} of resamples)" if r["tp_none_frac"] else "")


def _print_estimators(r: dict) -> None:
    if r.get("estimators"):
        from ..metrics import estimators_text
        print("transition estimators (identified = a rule on the CI: see prunelens/metrics/estimators.py):\n"
              + estimators_text(r["estimators"]))


def cmd_transition(a) -> int:
    from ..analyze import transition_from_run
    for run in a.runs:
        r = transition_from_run(run, tau=a.tau, n_boot=a.n_boot, seed=a.seed, write=a.write)
        tp = "none" if r["transition_point"] is None else r["transition_point"]
        print(f"{run}: Transition Point={tp} (tau={r['tau']}), 95% CI {_tp_ci(r)}; resampled TPs: "
              + " ".join(f"{k}:{v}" for k, v in r["tp_boot_counts"].items()))
        _print_estimators(r)
    return 0


def register(sub) -> None:
    p = sub.add_parser("analyze", help="per-depth decision lens: DM, OF/KL, accuracy, Transition Point")
    _common_model(p)
    _common_task(p)
    _common_out(p)
    _common_measure(p)
    p.add_argument("--tau", type=nonneg_float, default=0.0, help="Transition Point tolerance")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the CIs")
    p.set_defaults(func=cmd_analyze)
    conventions(p)

    t = sub.add_parser("transition", help="Transition Point and its bootstrap CI, beside the decision-depth and "
                       "accuracy change-point estimators with their verdicts, from saved analyze runs (no model)")
    t.add_argument("runs", nargs="+", help="analyze output folders (analysis.json + samples.csv)")
    t.add_argument("--tau", type=nonneg_float, default=None, help="tolerance (default: the run's own)")
    t.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the CIs")
    t.add_argument("--seed", type=any_int, default=0, help="bootstrap seed")
    t.add_argument("--write", action="store_true",
                   help="add the CI and the estimators to each run's analysis.json (at the run's tau)")
    t.set_defaults(func=cmd_transition)
    conventions(t)
