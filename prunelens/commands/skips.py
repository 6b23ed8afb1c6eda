"""`prunelens skips`: skip one layer at a time; the change of every later layer's update and of the decision."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, layer_ids, load_lm,
                     measure_kw, model_inputs, positive_int, prepare_out, say, task_kw)


def cmd_skips(a) -> int:
    from ..causal.run import run_skips
    prepare_out(a, *model_inputs(a))
    lm = load_lm(a)
    say(f"skips: {a.task}, skipping {a.layers or 'every layer'} in turn ...")
    r = run_skips(a.out, task=a.task, fmt=a.format, layers=a.layers, decision=not a.no_decision, lm=lm,
                  task_kw=task_kw(a), batch_size=a.batch_size, n_boot=a.n_boot, seed=a.seed, **measure_kw(a))
    for row in r.get("decision", []):
        print(f"skip {row['layer']}: accuracy {row['d_acc']:+.3f} [{row['d_acc_ci'][0]:+.3f}, {row['d_acc_ci'][1]:+.3f}],"
              f" DM {row['d_dm']:+.3f} [{row['d_dm_ci'][0]:+.3f}, {row['d_dm_ci'][1]:+.3f}]")
    print(f"results: {a.out}/skips.json ({r['seconds']} s); plots: " + ", ".join(r["plots"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("skips", help="skip effects: how skipping one layer changes every later layer's update and "
                                     "the decision (after Csordás et al. 2025)")
    _common_model(p)
    _common_task(p)
    _common_measure(p)
    _common_out(p)
    p.add_argument("--layers", default=None, type=layer_ids, help="layers to skip (default every layer)")
    p.add_argument("--no-decision", action="store_true", help="only the update changes (no final-accuracy passes)")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the questions")
    p.set_defaults(func=cmd_skips)
    conventions(p)
