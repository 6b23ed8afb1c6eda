"""`prunelens eval`: lm-eval-harness-compatible zero/few-shot evaluation of a dense, pruned-in-memory or exported
model; writes DIR/results.json and DIR/samples_<task>.jsonl, prints lm-eval's Markdown table."""
from __future__ import annotations


def cmd_eval(a) -> int:
    from ..evaluate import markdown_table, run_eval
    from .common import device_map_arg, model_inputs, prepare_out, say
    device_map = device_map_arg(a)
    if a.remove is not None and a.trajectory is not None:
        raise ValueError("give either --remove or --trajectory/--step, not both")
    if (a.trajectory is None) != (a.step is None):
        raise ValueError("--trajectory and --step go together")
    prepare_out(a, *model_inputs(a))
    say(f"eval: loading tasks {a.tasks} and model {a.model} ...")
    res = run_eval(a.model, a.tasks, a.out, split=a.split, data_dir=a.data_dir, limit=a.limit,
                   num_fewshot=a.num_fewshot, fewshot_seed=a.fewshot_seed, fewshot_split=a.fewshot_split,
                   remove=a.remove, trajectory=a.trajectory, step=a.step, device=a.device, dtype=a.dtype,
                   device_map=device_map, offload_folder=a.offload_folder, batch_size=a.batch_size,
                   trust_remote_code=a.trust_remote_code)
    pr = res["config"]["pruned"]
    print(f"{a.model}" + (f" without layers {pr['removed']}" if pr else "")
          + f" ({res['config']['num_layers']} layers)")
    print(markdown_table(res))
    print(f"results: {a.out}/results.json, per-sample: {a.out}/samples_<task>.jsonl")
    return 0


def register(sub) -> None:
    from .common import (DATA_DIR_HELP, _common_model, _common_out, _task_options, any_int, conventions, layer_ids,
                         limit_arg, nonneg_int)
    p = sub.add_parser("eval", help="zero/few-shot evaluation with lm-eval-harness numbers (acc, acc_norm)")
    _common_model(p)
    _task_options(p, multi=True)
    p.add_argument("--split", default=None, help="dataset split (default: the split lm-eval evaluates)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--limit", type=limit_arg, default=None,
                   help="first N documents of each task, or a fraction 0 < x < 1 of them (lm-eval --limit)")
    p.add_argument("--num-fewshot", type=nonneg_int, default=0,
                   help="few-shot examples before each question (lm-eval: --num_fewshot)")
    p.add_argument("--fewshot-seed", type=any_int, default=1234, help="lm-eval's fewshot_random_seed")
    p.add_argument("--fewshot-split", default=None,
                   help="split the shots come from (default lm-eval's: train, dev for MMLU; else validation)")
    p.add_argument("--remove", default=None, type=layer_ids,
                   help="evaluate a pruned view without these original layer ids, e.g. 3,7")
    p.add_argument("--trajectory", default=None, help="a prune output folder (trajectory.json); use with --step")
    p.add_argument("--step", type=nonneg_int, default=None, help="1-based step of --trajectory to evaluate")
    _common_out(p)
    p.set_defaults(func=cmd_eval)
    conventions(p)
