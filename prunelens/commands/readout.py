"""`prunelens readout`: the decision at every depth read by the logit lens, an option-restricted tuned lens and
linear probes (with a shuffled-label control), side by side with their transition estimators."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, load_lm, measure_kw,
                     model_inputs, positive_int, prepare_out, say, task_kw)


def cmd_readout(a) -> int:
    from ..readout.run import run_readout
    prepare_out(a, *model_inputs(a))
    lm = load_lm(a)
    say(f"readout: {a.task}, logit lens, tuned lens (rank {a.rank}, {a.steps} steps per depth), probes ...")
    r = run_readout(a.out, task=a.task, fmt=a.format, split=a.split, train_split=a.train_split, n_train=a.n_train,
                    lm=lm, task_kw=task_kw(a), rank=a.rank, steps=a.steps, folds=a.folds, n_boot=a.n_boot,
                    seed=a.seed, batch_size=a.batch_size, log=say, **measure_kw(a))
    for name, x in r["readouts"].items():
        e = x["estimators"]["decision_depth_pred"]
        print(f"{name}: final accuracy {x['acc'][-1]:.3f}; decision depth {e['point']} {e['ci']} ({e['verdict']})")
    print(f"results: {a.out}/readout.json ({r['seconds']} s); plots: " + ", ".join(r["plots"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("readout", help="readouts beyond the logit lens: option-restricted tuned lens and linear "
                                       "probes by depth, with a shuffled-label control")
    _common_model(p)
    _common_task(p)
    _common_measure(p)
    _common_out(p)
    p.add_argument("--train-split", default=None,
                   help="split the tuned lens is fitted on (default: seeded halves of the evaluation questions)")
    p.add_argument("--n-train", type=positive_int, default=None, help="training questions (default: half)")
    p.add_argument("--rank", type=positive_int, default=16, help="rank of each depth's translator update")
    p.add_argument("--steps", type=positive_int, default=200, help="optimiser steps per depth")
    p.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds of the probes")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the questions")
    p.set_defaults(func=cmd_readout)
    conventions(p)
