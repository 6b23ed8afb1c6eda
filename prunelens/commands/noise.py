"""`prunelens noise`: Gaussian noise scaled by each layer's activation std, over alpha x depth x seed."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, floats, ints, load_lm,
                     measure_kw, model_inputs, nonneg_float_list, nonneg_int, nonneg_int_list, prepare_out, say, task_kw)


def cmd_noise(a) -> int:
    from ..analyses.run import run_noise
    if not a.alphas or not a.seeds:
        raise ValueError("--alphas and --seeds need at least one value each")
    prepare_out(a, *model_inputs(a))
    lm = load_lm(a)
    say(f"noise: {a.task}, {len(floats(a.alphas))} alpha(s) x {len(ints(a.depths)) or 'every'} depth(s) x "
        f"{len(ints(a.seeds))} seed(s), a scoring pass each ...")
    r = run_noise(a.out, task=a.task, fmt=a.format, alphas=floats(a.alphas), depths=ints(a.depths) or None,
                  seeds=ints(a.seeds), include_bos=a.include_bos, lm=lm, task_kw=task_kw(a),
                  batch_size=a.batch_size, tp=a.tp, **measure_kw(a))
    for ps in r["phase_sensitivity"]:
        print(f"alpha={ps['alpha']:g}: mean drop when the noise is in the Silent / Decisive phase: final DM "
              f"{ps['silent_drop']} / {ps['decisive_drop']}, accuracy {ps['silent_acc_drop']} / {ps['decisive_acc_drop']}")
    print(f"results: {a.out}/noise.json ({r['seconds']} s); plots: " + ", ".join(r["plots"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("noise", help="noise sensitivity by depth (Figures 6, 18)")
    _common_model(p)
    _common_task(p)
    _common_measure(p)
    _common_out(p)
    p.add_argument("--alphas", default="0.5,1,2", type=nonneg_float_list,
                   help="noise scales, in units of the layer's activation std")
    p.add_argument("--depths", default="", type=nonneg_int_list,
                   help="depths to noise (default all 0..L; 0 = embeddings)")
    p.add_argument("--seeds", default="0,1,2", type=nonneg_int_list, help="noise seeds (comma-separated)")
    p.add_argument("--tp", type=nonneg_int, default=None,
                   help="Transition Point from a finished analyze run: the clean "
                   "run then scores the final depth only")
    p.add_argument("--include-bos", action="store_true", help="count BOS when computing sigma_l")
    p.set_defaults(func=cmd_noise)
    conventions(p)
