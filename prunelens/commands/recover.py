"""`prunelens recover`: LoRA (or full) fine-tuning of pruned models; DM and accuracy before and after (Figure 7)."""
from __future__ import annotations

from .common import (DATA_DIR_HELP, _common_measure, _common_model, _common_out, any_int, conventions,
                     deprecated_alias, floats, layer_id_sets, load_lm, measure_kw, model_inputs, one_task,
                     positive_float, positive_int, prepare_out, ratio_list)


def cmd_recover(a) -> int:
    from ..analyses.run import run_recovery
    if not a.remove and not a.ratios:
        raise ValueError("--ratios: give at least one ratio (or --remove)")
    prepare_out(a, *model_inputs(a), ("--train-task", a.train_task), ("--eval-task", a.eval_task))
    if a.trajectory is not None and not a.remove:   # a malformed trajectory fails before the model is loaded
        from ..analyses.trajectories import load_trajectory
        load_trajectory(a.trajectory)
    lm = load_lm(a)
    from .common import say
    say(f"recover: {a.mode} fine-tuning on {a.train_task}, {a.train_steps} steps per removal set ...")
    removals = a.remove or None
    r = run_recovery(a.out, train_task=a.train_task, train_split=a.train_split, eval_task=a.eval_task,
                     eval_split=a.eval_split, fmt=a.format, removals=removals, trajectory=a.trajectory,
                     ratios=floats(a.ratios), mode=a.mode, steps=a.train_steps, lr=a.lr, batch_size=a.train_batch_size,
                     lora_r=a.lora_r, n_train=a.n_train, n_eval=a.n_eval, seed=a.seed, lm=lm,
                     full_depth=not a.final_only, data_dir=a.data_dir,
                     **measure_kw(a))
    from ..metrics.estimators import estimators_brief
    for run in r["runs"]:
        b, f = run["before"], run["after"]
        print(f"ratio {run['ratio']:.2f}: acc {b['acc']:.3f} -> {f['acc']:.3f}, final DM {b['dm_final']:.3f} -> "
              f"{f['dm_final']:.3f}, TP {b['transition_point']} -> {f['transition_point']}")
        if b.get("estimators") or f.get("estimators"):
            print(f"  before: {estimators_brief(b.get('estimators'))}\n  after:  {estimators_brief(f.get('estimators'))}")
    print(f"results: {a.out}/recovery.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser("recover", help="fine-tune pruned models (LoRA via peft, or full) and re-measure (Figure 7)")
    _common_model(p)
    _common_out(p)
    p.add_argument("--format", default="cloze", choices=["letter", "cloze"],
                   help="cloze: lm-eval continuation scoring; letter: the paper's lettered prompt")
    _common_measure(p)
    p.add_argument("--train-task", default="arc_easy", type=one_task, help="the one task fine-tuned on")
    p.add_argument("--train-split", default="test", help="the local ARC data has no train split; test is disjoint "
                   "from the validation split used for evaluation")
    p.add_argument("--eval-task", "--tasks", dest="eval_task", default="arc_easy", type=one_task,
                   help="the one task measured before and after fine-tuning")
    p.add_argument("--eval-split", default="validation", help="split of --eval-task that is measured")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--n-train", type=positive_int, default=None, help="random subset of the training split")
    p.add_argument("--n-eval", type=positive_int, default=None, help="random subset of the evaluation split")
    p.add_argument("--remove", default="", type=layer_id_sets,
                   help="original layer ids to remove, as everywhere (3,7); several removal sets separated by ';' "
                        "(3,7;3,7,9) (else --trajectory/--ratios)")
    p.add_argument("--trajectory", default=None, help="trajectory.json (or its folder) to take the removal sets from")
    p.add_argument("--ratios", default="0.25,0.375,0.5", type=ratio_list,
                   help="fractions of layers removed: the trajectory steps closest to them, or one-shot ShortGPT "
                        "without --trajectory")
    p.add_argument("--mode", default="lora", choices=["lora", "full"], help="LoRA (peft) or full fine-tuning")
    p.add_argument("--train-steps", type=positive_int, default=40, help="optimizer steps of fine-tuning")
    deprecated_alias(p, "--steps", "--train-steps", "train_steps", type=positive_int)
    p.add_argument("--lr", type=positive_float, default=2e-4, help="learning rate")
    p.add_argument("--train-batch-size", type=positive_int, default=8, help="fine-tuning batch size")
    p.add_argument("--lora-r", type=positive_int, default=8, help="LoRA rank")
    p.add_argument("--seed", type=any_int, default=0, help="seed of the subsets, the fine-tuning and the bootstrap")
    p.add_argument("--final-only", action="store_true", help="measure the final depth only (no DM-by-depth/TP)")
    p.set_defaults(func=cmd_recover)
    conventions(p)
