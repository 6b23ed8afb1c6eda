"""`prunelens cka`: linear CKA between a pruned model and its dense model (hidden token-mean and decision token)."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, ints, layer_ids, load_lm,
                     measure_kw, model_inputs, open_fraction, prepare_out, say, task_kw)


def cmd_cka(a) -> int:
    from ..analyses.run import run_cka
    if (a.remove is None) == (a.trajectory is None):
        raise ValueError("give exactly one of --remove and --trajectory (with --ratio)")
    if a.trajectory is not None and a.ratio is None:
        raise ValueError("--trajectory needs --ratio")
    prepare_out(a, *model_inputs(a))
    if a.trajectory is not None:             # a malformed trajectory fails before the model is loaded
        from ..analyses.run import removal_from
        a.remove, a.trajectory = removal_from(None, a.trajectory, a.ratio), None
    lm = load_lm(a)
    say(f"cka: {a.task}, dense and pruned passes (removed {ints(a.remove)}) ...")
    r = run_cka(a.out, task=a.task, fmt=a.format, remove=ints(a.remove) if a.remove is not None else None,
                trajectory=a.trajectory, ratio=a.ratio, debiased=a.debiased, include_bos=a.include_bos,
                accuracy=not a.no_accuracy, lm=lm, task_kw=task_kw(a), batch_size=a.batch_size,
                **measure_kw(a))
    for sig in ("hidden", "decision"):
        s = r["signals"][sig]
        print(f"{sig}: final pruned depth {len(r['kept_depths']) - 1} best matches dense depth {s['final_best']}")
    print(f"results: {a.out}/cka.json; plots: " + ", ".join(r["plots"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("cka", help="CKA between a pruned model and its dense model (Figures 3, 10, 11)")
    _common_model(p)
    _common_task(p)
    _common_measure(p)
    _common_out(p)
    p.add_argument("--remove", default=None, type=layer_ids,
                   help="comma-separated original layer ids to remove, e.g. 3,7")
    p.add_argument("--trajectory", default=None, help="trajectory.json (or its folder) to take the removal set from")
    p.add_argument("--ratio", type=open_fraction, default=None,
                   help="with --trajectory: the step whose fraction of layers removed is closest to this")
    p.add_argument("--debiased", action="store_true", help="debiased (unbiased-HSIC) CKA")
    p.add_argument("--include-bos", action="store_true", help="count BOS in the token mean (off: attention sink)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the dense/pruned accuracy evaluation")
    p.set_defaults(func=cmd_cka, batch_size=8)
    conventions(p)
