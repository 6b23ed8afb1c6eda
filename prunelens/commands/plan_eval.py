"""`prunelens plan-eval`: leave-one-(model, task)-out evaluation of `plan` against finished trajectories."""
from __future__ import annotations

from .common import _common_out, conventions, prepare_out


def _f(x, spec: str = ".3f") -> str:
    return "none" if x is None else format(x, spec)


def _ci(c) -> str:
    return "none" if not c else "[" + ", ".join(_f(x) for x in c) + "]"


def cmd_plan_eval(a) -> int:
    from ..plan.evaluate import evaluate, load_points
    from ..results import staged, write_json
    prepare_out(a, *[("--plans", p) for p in a.plans], *[("--trajectories", t) for t in a.trajectories])
    points = load_points(a.plans, a.trajectories)
    if len(points) < 2:
        raise ValueError(f"{len(points)} plan run(s) found under --plans: leave-one-out needs at least 2")
    from ..plan.figures import evaluation_figure
    res = evaluate(points, truth_method=a.truth)
    text = summary_lines(res)
    with staged(a.out) as d:
        write_json(d / "plan_evaluation.json", res)
        (d / "plan_evaluation.md").write_text("# plan-eval\n\n" + "\n".join(f"- {x}" for x in text) + "\n\n"
                                             + "\n".join(pair_table(res)) + "\n")
        evaluation_figure(res, d / "plan_evaluation.png")
    print("\n".join(text))
    print(f"results: {a.out}/plan_evaluation.json (.md, .png)")
    return 0


def summary_lines(res: dict) -> list[str]:
    out = [f"left out: {x['model']} {x['task']} ({x['why']})" for x in res["excluded"]]
    for name, s in res["scores"].items():
        if name == "_common":
            out.append(f"on the {s['n']} points every predictor covers: " + ", ".join(
                f"{k} MAE {v:.3f}" for k, v in s.items() if k != "n" and v is not None))
        else:
            out.append(f"{name}: MAE {_f(s['mae'])} {_ci(s['mae_ci'])} over {s['n']} points, Spearman "
                       f"{_f(s['spearman'])} {_ci(s.get('spearman_ci'))}"
                       + ("; depth read: " + ", ".join(f"{k} on {v}" for k, v in s["tp_sources"].items())
                          if s.get("tp_sources") else ""))
    for k, v in res["versus"].items():
        out.append(f"{k}: {v['verdict']} (MAE difference {_f(v['mae_diff'], '+.3f')}, 95% CI {_ci(v['ci'])}, "
                   f"n={v['n']})")
    for k, v in res["budget"].items():
        if v["n"]:
            out.append(f"within --max-drop: {k} {v['within']}/{v['n']} (95% CI {_ci(v['ci'])})")
    for k, v in (res.get("sets_versus") or {}).items():
        out.append(f"{k}, paired drop at the same layer count: {v['verdict']} (plan - baseline "
                   f"{_f(v['drop_diff'], '+.3f')}, 95% CI {_ci(v['ci'])}, n={v['n']})")
    return out


def pair_table(res: dict) -> list[str]:
    """Per scored pair: truth and predictions of the critical ratio, and the measured drop of each recommended set
    (plan in-sample and held out, the baselines' sets of as many blocks; blank where not measured)."""
    out = ["| pair | truth | plan | plan, loo c | paper rule | k | drop: plan (in-sample) | plan (held out) | "
           "ShortGPT | angular | random | last 25% (k) |", "| --- |" + " ---: |" * 11]
    for r in res["points"]:
        s = r.get("set_drops") or {}
        g = lambda key: "" if s.get(key) is None else f"{s[key]:+.3f}"
        out.append(f"| {r['model']} {r['task']} | {_f(r['truth'])} | {_f(r['plan'])} | {_f(r['plan_loo'])} | "
                   f"{_f(r['paper_rule'])} | {s.get('k', '')} | {g('plan')} | {g('plan_holdout')} | {g('shortgpt')} | "
                   f"{g('angular')} | {g('random')} | {g('last_25pct')} ({s.get('last_25pct_k', '')}) |")
    return out


def register(sub) -> None:
    p = sub.add_parser("plan-eval", aliases=["plan_eval"], help="leave-one-(model, task)-out evaluation of `plan` against trajectories and "
                                         "the rules of thumb (paper's safe margin, drop the last 25%%)")
    p.add_argument("--plans", nargs="+", required=True, help="folders holding plan runs (plan.json, outcomes.npz)")
    p.add_argument("--trajectories", nargs="+", required=True,
                   help="folders holding the trajectories (trajectory.json) or controls (controls.json) of the same "
                        "models, tasks and questions")
    p.add_argument("--truth", default="ip_skip",
                   choices=["ip_skip", "shortgpt", "angular", "tail", "iterative", "random"],
                   help="which trajectory's critical ratio is the ground truth")
    _common_out(p)
    p.set_defaults(func=cmd_plan_eval)
    conventions(p)
