"""`prunelens ablate`: remove single layers and adjacent pairs around the Transition Point (Table 1).
Also registers `prunelens controls` (random and one-shot ShortGPT pruning at equal layer count), the ablation's
baselines, so cli.py needs no extra entry."""
from __future__ import annotations

from .common import (_common_measure, _common_model, _common_out, _common_task, conventions, int_list, ints, load_lm,
                     measure_kw, model_inputs, nonneg_int, nonneg_int_list, prepare_out, say, task_kw)


def cmd_ablate(a) -> int:
    from ..analyses.run import run_ablation
    if len(ints(a.window)) != 2 or ints(a.window)[0] > ints(a.window)[1]:
        raise ValueError(f"--window: give two offsets lo,hi with lo <= hi, got {a.window}")
    prepare_out(a, *model_inputs(a))
    lm = load_lm(a)
    from ..tasks import split_task_list
    say(f"ablate: {a.tasks}, one scoring pass per removal set and task ...")
    r = run_ablation(a.out, tasks=split_task_list(a.tasks), fmt=a.format, tp=a.tp,
                     window=tuple(ints(a.window)), pairs=not a.no_pairs, lm=lm, task_kw=task_kw(a),
                     batch_size=a.batch_size, dense_from=a.dense_from, **measure_kw(a))
    print(f"ablated around depth {r['tp']} ({r['tp_source']}); per-task mean-DM TP point (identified or not) "
          f"{r['task_tp']}")
    print("removed".ljust(10) + "".join(t[:12].rjust(13) for t in r["tasks"]) + "avg".rjust(8))
    for row in r["rows"]:
        print(row["label"].ljust(10) + "".join(f"{row['tasks'][t]['acc']:13.3f}" for t in r["tasks"])
              + f"{row['avg_acc']:8.3f}")
        if row["removed"] and all("d_acc_ci" in row["tasks"][t] for t in r["tasks"]):
            print("  Δ 95% CI".ljust(10) + "".join(f"{c[0]:+6.2f},{c[1]:+.2f}".rjust(13) for c in
                                                  (row["tasks"][t]["d_acc_ci"] for t in r["tasks"])))
    print(f"results: {a.out}/ablation.json")
    return 0


def cmd_controls(a) -> int:
    from ..analyses.run import run_controls
    if not a.seeds:
        raise ValueError("--seeds: give at least one seed")
    prepare_out(a, *model_inputs(a))
    if a.trajectory is not None:             # a malformed trajectory fails before the model is loaded
        from ..analyses.trajectories import load_trajectory
        load_trajectory(a.trajectory)
    lm = load_lm(a)
    say(f"controls: {a.task}, random ({len(ints(a.seeds))} seed(s)) and one-shot ShortGPT removals ...")
    r = run_controls(a.out, task=a.task, fmt=a.format, counts=ints(a.counts) or None, trajectory=a.trajectory,
                     seeds=ints(a.seeds), lm=lm, task_kw=task_kw(a), batch_size=a.batch_size, **measure_kw(a))
    for name, m in r["methods"].items():
        print(name + ": " + ", ".join(f"{s['ratio']:.2f}->{s['acc']:.3f}" for s in m["steps"]))
    print(f"results: {a.out}/controls.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser("ablate", help="single/pair layer removal around the Transition Point (Table 1)")
    _common_model(p)
    _common_task(p, multi=True)
    _common_measure(p)
    _common_out(p)
    p.add_argument("--tp", type=nonneg_int, default=None, help="Transition depth (default: the median over the tasks of each one's mean-DM TP where "
                        "identified, else its decision depth)")
    p.add_argument("--window", default="-2,1", type=int_list, help="layer ids TP+lo..TP+hi to remove")
    p.add_argument("--no-pairs", action="store_true", help="singles only")
    p.add_argument("--dense-from", default=None, help="folder with <task>/analysis.json of the same samples "
                   "(from `prunelens analyze`), reused instead of re-measuring the dense model")
    p.set_defaults(func=cmd_ablate)
    conventions(p)

    c = sub.add_parser("controls", help="random and one-shot ShortGPT pruning at equal layer count (controls)")
    _common_model(c)
    _common_task(c)
    _common_measure(c)
    _common_out(c)
    c.add_argument("--trajectory", default=None, help="IP trajectory.json: use its layer counts and plot it alongside")
    c.add_argument("--counts", default="", type=nonneg_int_list, help="layer counts to remove (without --trajectory)")
    c.add_argument("--seeds", default="0,1,2", type=nonneg_int_list, help="seeds of the random-pruning control")
    c.set_defaults(func=cmd_controls)
    conventions(c)
