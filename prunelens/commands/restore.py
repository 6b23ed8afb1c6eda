"""`prunelens restore`: restore-patching of the dense model's residuals into a pruned model, depth by depth."""
from __future__ import annotations

import argparse

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, layer_ids, load_lm,
                     measure_kw, model_inputs, nonneg_int, nonneg_int_list, open_fraction, positive_int, prepare_out, say,
                     task_kw)


def or_keyword(word: str, parse):
    """An argparse type: the keyword `word`, or what `parse` accepts (its error names both)."""
    def f(s):
        if str(s).strip().lower() == word:
            return word
        try:
            return parse(s)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{e}, or '{word}'") from None
    f.__name__ = f"{word}_or_{parse.__name__}"
    return f


ratio_or_critical = or_keyword("critical", open_fraction)
depth_list = or_keyword("cuts", nonneg_int_list)


def mode_list(s) -> list[str]:
    from ..causal.restore import MODES      # a plain dict module: no torch at --help time
    got = [m.strip() for m in str(s).split(",") if m.strip()]
    bad = [m for m in got if m not in MODES]
    if bad or not got:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {bad or s!r}: choose from {', '.join(MODES)}")
    return got


def cmd_restore(a) -> int:
    from ..causal.run import removal, run_restore
    prepare_out(a, *model_inputs(a))
    rem, source = removal(a.remove, a.trajectory, a.ratio)   # a malformed trajectory fails before the model loads
    lm = load_lm(a)
    say(f"restore: {a.task}, removed {rem} ({source}); dense and pruned passes, then one pass per (depth, mode) ...")
    r = run_restore(a.out, task=a.task, fmt=a.format, remove=a.remove, trajectory=a.trajectory, ratio=a.ratio,
                    depths=a.depths or None, modes=a.modes, tp=a.tp, phases=not a.no_phase_split,
                    lm=lm, task_kw=task_kw(a), batch_size=a.batch_size, n_boot=a.n_boot, seed=a.seed,
                    **measure_kw(a))
    print(f"dense acc {r['dense']['acc']:.3f}, pruned {r['pruned']['acc']:.3f} (removed {r['removed']})")
    for q in r["answers"]:
        print(f"- {q['question']}: {q['status']} ({q['evidence']})")
    print(f"results: {a.out}/restore.json ({r['seconds']} s); plots: " + ", ".join(r["plots"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("restore", help="restore-patching: dense states patched into a pruned model, per depth "
                                       "(causal test of the Silent/Decisive account; magnitude-only and "
                                       "other-question controls)")
    _common_model(p)
    _common_task(p)
    _common_measure(p)
    _common_out(p)
    p.add_argument("--remove", default=None, type=layer_ids, help="comma-separated original layer ids to remove")
    p.add_argument("--trajectory", default=None, help="trajectory.json (or its folder) to take the removal set from")
    p.add_argument("--ratio", default=None, type=ratio_or_critical,
                   help="with --trajectory: the fraction of layers removed, or 'critical' = the first step whose "
                        "accuracy fell halfway to chance")
    p.add_argument("--depths", default="", type=depth_list,
                   help="pruned-model depths to patch (default every depth 0..L'), or 'cuts': 0, the first depth "
                        "after every cut, and L' (about one pass per cut and mode, plus L' and depth 0, instead of about L'/2)")
    p.add_argument("--modes", default=None, type=mode_list,
                   help="comma list of restore_all, restore_decision, other_decision, mean_decision, norm_all, "
                        "norm_decision (default all)")
    p.add_argument("--tp", type=nonneg_int, default=None,
                   help="the dense model's transition depth (Transition Point or decision-depth median from "
                        "`analyze`): labels Silent/Decisive depths and fixes the depth the questions are decided at")
    p.add_argument("--no-phase-split", action="store_true",
                   help="with --tp: skip the phase split (four passes); for a run that adds a control to a study "
                        "whose first run has it")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples of the questions")
    p.set_defaults(func=cmd_restore)
    conventions(p)
