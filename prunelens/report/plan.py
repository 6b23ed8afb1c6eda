"""Report section of `prunelens plan` and its leave-one-out evaluation (issue 13)."""
from __future__ import annotations

from pathlib import Path


def s_plan(R, tmp) -> str:
    from . import html as H
    from ..plan.figures import plan_figure
    from ..plan.run import summary_md
    out = []
    for i, p in enumerate(R["plan"]):
        items = [line[2:] for line in summary_md(p).splitlines() if line.startswith("- ")]
        fig = H._draw(lambda q: plan_figure(p, q), Path(tmp) / f"plan{i}" / "plan.png", "the plan",
                      "Predicted accuracy (single-layer removals added up) against the ratio removed, least harmful "
                      "first, with its 95% band (every resample re-ranks the layers); the recommended set and, after "
                      "--verify, its measured accuracy. " + H._meta(p), H._stored(p, "plan.png"))
        out.append(f"<h3>{H._title(p)}</h3><ul>" + "".join(f"<li>{H.esc(x)}</li>" for x in items) + "</ul>" + fig)
    for e in R["plan_evaluation"]:
        rows = [[r["model"], r["task"], H.f3(r["truth"]), H.f3(r["plan"]), H.f3(r["plan_loo"]), H.f3(r["paper_rule"]),
                 "-" if r.get("tp") is None else f"{r['tp']} ({r.get('tp_source') or 'source not recorded'})",
                 H.f3(r["last_25pct"])] for r in e["points"]]
        sc = [[k, str(v["n"]), H.f3(v["mae"]), H.ci(v["mae_ci"]), H.f3(v["spearman"]), H.ci(v.get("spearman_ci"))]
              for k, v in e["scores"].items() if not k.startswith("_")]
        vs = [[k.replace("_vs_", " vs "), str(v["n"]), H.f3(v["mae_diff"]), H.ci(v["ci"]), v["verdict"]]
              for k, v in e["versus"].items()]
        sv = [[k.replace("plan_vs_", "plan vs "), str(v["n"]), H.f3(v["drop_diff"]), H.ci(v["ci"]), v["verdict"]]
              for k, v in (e.get("sets_versus") or {}).items()]
        names = {"plan": "plan's recommended set (--verify, in-sample), at least one block",
                 "plan_holdout": "the same sets on held-out questions (--verify-holdout)",
                 "plan_empty": "plan's recommended set, when it removes nothing (within by construction)",
                 "last_25pct": "the last 25% of the blocks",
                 "shortgpt": "one-shot ShortGPT, as many blocks", "angular": "Gromov's angular block, as many blocks",
                 "random": "random, as many blocks (mean over seeds)"}
        bud = [[names.get(k, k), str(v["n"]), str(v["within"]), H.f3(v["share"]), H.ci(v["ci"])]
               for k, v in (e.get("budget") or {}).items()]
        out.append(f"<h3>Leave-one-out evaluation (truth: {H.esc(e['truth_method'])} critical ratio)</h3>"
                   + H.table(["model", "task", "truth", "plan", "plan (LOO c)", "paper rule", "depth it read",
                              "last 25%"], rows,
                             "no points")
                   + "".join(f"<p class=note>Left out: {H.esc(x['model'])} {H.esc(x['task'])}, "
                             f"{H.esc(x['why'])}.</p>" for x in e.get("excluded") or [])
                   + H.table(["predictor", "points", "MAE", "95% CI", "Spearman", "95% CI"], sc, "no scores")
                   + H.table(["comparison", "points", "MAE difference", "95% CI", "verdict"], vs, "no comparisons")
                   + "<p>Sets whose measured accuracy drop stays within the plan's --max-drop (Wilson 95% CI):</p>"
                   + H.table(["removal set", "points", "within budget", "share", "95% CI"], bud, "no sets measured")
                   + "<p>The plan's set against each baseline's set of as many blocks, paired on the same points "
                     "(plan's accuracy drop minus the baseline's; below 0: the plan's set loses less). In-sample: the "
                     "plan chose its set on these very questions, the baselines did not, so this leans towards the "
                     "plan:</p>"
                   + H.table(["comparison", "points", "drop difference", "95% CI", "verdict"], sv, "no pairs"))
    return "".join(out)
