"""`prunelens plan`: predict from the dense model how many layers can go and which (issue 13)."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, load_lm, measure_kw,
                     model_inputs, nonneg_int, open_fraction, positive_int, prepare_out, say, task_kw, unit_interval)


def cmd_plan(a) -> int:
    from ..plan.run import run_plan
    if a.ratio is not None and a.max_drop_given:
        raise ValueError("give --max-drop or --ratio, not both")
    prepare_out(a, *model_inputs(a))
    if a.export:
        prepare_out(a, *model_inputs(a), out=a.export)
    if a.tp is not None and a.tp_from is not None:
        raise ValueError("give --tp or --tp-from, not both")
    if a.tp_from is not None:          # checked before the model loads (its task and depth: after, in run_plan)
        from pathlib import Path
        if not (Path(a.tp_from) / "analysis.json").is_file() or not (Path(a.tp_from) / "samples.csv").is_file():
            raise FileNotFoundError(f"--tp-from {a.tp_from}: not a finished analyze run (analysis.json, samples.csv)")
    if a.verify_holdout:               # a split too small for it: fail before the model loads
        from ..plan.holdout import holdout_samples
        from ..analyses.run import _task
        holdout_samples(task_kw(a), [s.id for s in _task(a.task, **task_kw(a)).samples], a.verify_holdout, a.seed,
                        a.task)
    lm = load_lm(a)
    r = run_plan(a.out, task=a.task, fmt=a.format, max_drop=a.max_drop, ratio=a.ratio, tp=a.tp, tp_from=a.tp_from,
                 verify=a.verify, verify_holdout=a.verify_holdout,
                 verify_curve=a.verify_curve, export=a.export, lm=lm, task_kw=task_kw(a), batch_size=a.batch_size, n_boot=a.n_boot, seed=a.seed,
                 log=say, **measure_kw(a))
    from pathlib import Path
    print(Path(a.out, "plan.md").read_text())
    print(f"results: {a.out}/plan.json, plan.md ({r['seconds']} s); plots: " + ", ".join(r["plots"]))
    return 0


def register(sub) -> None:
    import argparse
    p = sub.add_parser("plan", help="predict from the dense model how many layers can go and which "
                                    "(single-layer removals, additive prediction with bands; --verify checks it)")
    _common_model(p)
    _common_task(p)
    _common_measure(p)
    _common_out(p)

    class MaxDrop(argparse.Action):      # remembers that it was given: --ratio excludes it, yet it has a default
        def __call__(self, parser, ns, values, option_string=None):
            ns.max_drop, ns.max_drop_given = values, True

    p.add_argument("--max-drop", type=unit_interval, default=0.05, action=MaxDrop,
                   help="accuracy budget: the largest set whose expected drop stays within it (the set whose whole 95%% "
                        "band does is reported beside it as the safe set)")
    p.add_argument("--ratio", type=open_fraction, default=None,
                   help="instead of --max-drop: the fraction of layers to remove (the least harmful first)")
    p.add_argument("--tp", type=nonneg_int, default=None,
                   help="the dense transition depth, if known (skips the full-depth lens pass that labels phases)")
    p.add_argument("--tp-from", default=None, metavar="RUN",
                   help="instead of --tp: read the transition depth from a finished analyze run (its mean-DM TP where "
                        "identified, else its decision depth; plan.json records which and its verdict)")
    p.add_argument("--verify", action="store_true", help="measure the recommended set and report it beside the "
                                                         "prediction")
    p.add_argument("--verify-holdout", type=positive_int, default=None, metavar="N",
                   help="also measure the recommended set on N other questions of the split (a seeded sample of those "
                        "not planned on): --verify is in-sample, since the set was chosen on its questions")
    p.add_argument("--verify-curve", action="store_true",
                   help="also measure every prefix of the removal order (L-1 passes): the ground truth that "
                        "`plan evaluate` calibrates and scores the prediction on")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="also write the recommended pruned checkpoint to DIR (the export command's format)")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the questions")
    p.set_defaults(func=cmd_plan, max_drop_given=False)
    conventions(p)
