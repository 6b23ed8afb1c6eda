"""`prunelens recover`: LoRA (or full) fine-tuning of pruned models; DM and accuracy before and after (Figure 7)."""
from __future__ import annotations

from .common import _common_measure, _common_model, floats, ints, load_lm, measure_kw


def cmd_recover(a) -> int:
    from ..analyses.run import run_recovery
    lm = load_lm(a)
    removals = [ints(x) for x in a.remove.split(";")] if a.remove else None
    r = run_recovery(a.out, train_task=a.train_task, train_split=a.train_split, eval_task=a.eval_task,
                     eval_split=a.eval_split, fmt=a.format, removals=removals, trajectory=a.trajectory,
                     ratios=floats(a.ratios), mode=a.mode, steps=a.steps, lr=a.lr, batch_size=a.train_batch_size,
                     lora_r=a.lora_r, n_train=a.n_train, n_eval=a.n_eval, seed=a.seed, lm=lm,
                     full_depth=not a.final_only, data_dir=a.data_dir,
                     **measure_kw(a))
    for run in r["runs"]:
        b, f = run["before"], run["after"]
        print(f"ratio {run['ratio']:.2f}: acc {b['acc']:.3f} -> {f['acc']:.3f}, final DM {b['dm_final']:.3f} -> "
              f"{f['dm_final']:.3f}, TP {b['transition_point']} -> {f['transition_point']}")
    print(f"results: {a.out}/recovery.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser("recover", help="fine-tune pruned models (LoRA via peft, or full) and re-measure (Figure 7)")
    _common_model(p)
    p.add_argument("--out", required=True)
    p.add_argument("--format", default="cloze", choices=["letter", "cloze"])
    _common_measure(p)
    p.add_argument("--train-task", default="arc_easy")
    p.add_argument("--train-split", default="test", help="the local ARC data has no train split; test is disjoint "
                   "from the validation split used for evaluation")
    p.add_argument("--eval-task", default="arc_easy")
    p.add_argument("--eval-split", default="validation")
    p.add_argument("--data-dir", default=None, help="folder in the public layouts of the benchmarks")
    p.add_argument("--n-train", type=int, default=None, help="random subset of the training split")
    p.add_argument("--n-eval", type=int, default=None, help="random subset of the evaluation split")
    p.add_argument("--remove", default="", help="removal sets 'a,b;c,d,e' (else --trajectory/--ratios)")
    p.add_argument("--trajectory", default=None)
    p.add_argument("--ratios", default="0.25,0.375,0.5", help="with --trajectory, or one-shot ShortGPT without it")
    p.add_argument("--mode", default="lora", choices=["lora", "full"])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--train-batch-size", type=int, default=8)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--final-only", action="store_true", help="measure the final depth only (no DM-by-depth/TP)")
    p.set_defaults(func=cmd_recover)
