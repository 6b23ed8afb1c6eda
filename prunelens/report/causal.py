"""Report sections of the referee's questions (issue 12): restore-patching, skip effects and the readouts beyond
the logit lens. Same conventions as html.py: tables with CIs, figures redrawn from the JSONs, captions with model,
task, format, score and n, and every answer with the interval that decided it."""
from __future__ import annotations

from pathlib import Path


def _trie_note(r: dict) -> str:
    """How the option-restricted readouts read the options (runs before the option trie read first tokens only)."""
    tr = r.get("option_trie")
    if tr:
        return (f"Options read on the option trie: {tr['questions_sharing_a_first_token']:.0%} of questions have "
                f"options sharing a first token, {tr['branch_nodes_per_question']:.2f} branching nodes per question.")
    if r.get("options_sharing_a_decision_token") is not None:
        return (f"Options read by their first token only (an older run): {r['options_sharing_a_decision_token']:.0%} "
                "of questions have options sharing it, which tie there.")
    return ""


def _h():
    from . import html      # html.py imports this module: its helpers are looked up at call time
    return html


def s_restore(R, tmp) -> str:
    from ..causal import figures as CF
    H, out = _h(), []
    for i, r in enumerate(R["restore"]):
        answers = "".join(f"<li><b class='{a['status'].split()[0]}'>{H.esc(a['status'])}</b>: {H.esc(a['question'])}"
                          f"<br><span class=note>{H.esc(H._plain(a['evidence']))}</span></li>" for a in r["answers"])
        modes = list(r["curves"])
        rows = []
        for j, c0 in enumerate(r["curves"][modes[0]]):
            row = [str(c0["pruned_depth"]), str(c0["dense_depth"]), H.cell(c0.get("phase"))]
            for m in modes:
                c = r["curves"][m][j]
                row.append(f"{H.f3(c['share_dm'])} {H.ci(c['share_dm_ci'])}")
            rows.append(row)
        g = r["gap"]
        meta = H._meta(r)
        ps = r.get("phase_split") or {}
        split = "".join(
            f"<li>without only the removed {what} layers {H.esc(H.cell(ps[k]['removed']))}: accuracy "
            f"{ps[k]['acc']:.3f} ({ps[k]['d_acc']:+.3f} {H.ci(ps[k]['d_acc_ci'])} against dense), share of the "
            f"pruned model's DM loss {H.f3(ps[k]['share_of_dm_loss'])} {H.ci(ps[k]['share_of_dm_loss_ci'])}</li>"
            for k, what in (("without_silent_only", "Silent"), ("without_decisive_only", "Decisive")) if k in ps)
        split = f"<p>Phase split (the removal set cut at tp):</p><ul>{split}</ul>" if split else ""
        fig = H._draw(lambda p: CF.restore_figure(r, p), Path(tmp) / f"restore{i}" / "restore.png",
                      "the restore-patching curve",
                      "Recovered share of the DM lost by pruning (left) and accuracy change against the pruned model "
                      "(right) when the dense residual (or a control) is written at each depth of the pruned model; "
                      "bands: 95% question-bootstrap CIs. " + meta, H._stored(r, "restore.png"))
        out.append(f"<h3>{H._title(r)}: removed {H.esc(H.cell(r['removed']))} of {r['num_layers']}</h3>"
                   f"<p class=note>removal: {H.esc(H.cell(r.get('removal_source')))}; dense acc "
                   f"{r['dense']['acc']:.3f} {H.ci(r['dense']['acc_ci'])}, pruned {r['pruned']['acc']:.3f} "
                   f"{H.ci(r['pruned']['acc_ci'])}; DM gap {g['dm']:.3f} {H.ci(g['dm_ci'])}; transition depth used "
                   f"{H.esc(H._tp(r.get('tp')))}</p><ol>{answers}</ol>" + split
                   + H.table(["pruned depth", "dense depth", "phase"] + [f"{m}: share of DM" for m in modes], rows,
                             "no depths") + fig)
    return "".join(out)


def s_skips(R, tmp) -> str:
    from ..causal import figures as CF
    H, out = _h(), []
    for i, r in enumerate(R["skips"]):
        rows = [[str(d["layer"]), f"{d['d_acc']:+.3f} {H.ci(d['d_acc_ci'])}", f"{d['d_dm']:+.3f} {H.ci(d['d_dm_ci'])}"]
                for d in r.get("decision", [])]
        fig = H._draw(lambda p: CF.skip_figure(r, p), Path(tmp) / f"skips{i}" / "skips.png", "the skip effects",
                      "Left: relative change of each later layer's update when one layer is skipped (sum over prompt "
                      "tokens of the change's norm over the dense update's norm). Right: change of final accuracy and "
                      "DM against dense, paired 95% CIs. " + H._meta(r), H._stored(r, "skips.png"))
        out.append(f"<h3>{H._title(r)}</h3><p class=note>{r['n_tokens']} prompt tokens; dense acc "
                   f"{H.f3((r.get('dense') or {}).get('acc'))}</p>"
                   + H.table(["skipped layer", "Δ accuracy", "Δ final DM"], rows, "decision not measured") + fig)
    return "".join(out)


def s_readout(R, tmp) -> str:
    from ..readout.figures import readout_figure
    H, out = _h(), []
    for i, r in enumerate(R["readout"]):
        rows = []
        for name, x in r["readouts"].items():
            dm = (f"{x['dm_mean'][-1]:+.3f} {H.ci(x['dm_ci'][-1])}" if x.get("dm_mean") is not None
                  and x.get("dm_ci") is not None else "-")
            rows.append([name, f"{x['acc'][-1]:.3f} {H.ci(x['acc_ci'][-1])}", dm]
                        + [H._est_cell((x.get("estimators") or {}).get(k))
                           for k in ("mean_dm_tp", "decision_depth_pred", "acc_changepoint")])
        t = r.get("tuned")
        how = (f"The tuned lens was fitted on {r['n_train']} other questions (rank {t['rank']}, {t['steps']} steps "
               f"per depth); " if t else f"No tuned lens ({r.get('tuned_skipped')}); ")
        fig = H._draw(lambda p: readout_figure(r, p), Path(tmp) / f"readout{i}" / "readout.png", "the readouts",
                      "Accuracy and mean Decision Margin by depth of each readout on the evaluation questions "
                      "(bands: 95% CIs; each DM in its readout's own units, so compare where it crosses 0). " + how +
                      f"probes are {r['probe']['folds']}-fold cross-validated. " + H._meta(r),
                      H._stored(r, "readout.png"))
        mean = lambda v: sum(v) / len(v)                                   # noqa: E731
        kl = (f"tuned-lens KL from the final option-token distribution, evaluation questions, mean over depths: "
              f"{mean(t['kl_eval']):.3f} (untrained {mean(t['kl_eval_identity']):.3f}; training questions "
              f"{mean(t['kl_train']):.3f}). " + _trie_note(r) if t else how)
        answers = "".join(f"<li><b class='{a['status'].split()[0]}'>{H.esc(a['status'])}</b>: "
                          f"{H.esc(a['question'])}<br><span class=note>{H.esc(H._plain(a['evidence']))}</span></li>"
                          for a in r.get("answers", []))
        out.append(f"<h3>{H._title(r)}</h3><p class=note>{H.esc(kl)}</p>" + (f"<ol>{answers}</ol>" if answers else "")
                   + H.table(["readout", "final accuracy", "final mean DM (own units)", "mean-DM TP",
                              "decision depth (pred)", "acc change-point"],
                             rows, "no readouts") + fig)
    return "".join(out)


def _final_correct(run_dir) -> dict | None:
    """{sample_id: correct at the final depth} from an analyze run's samples.csv (None: no table)."""
    import pandas as pd
    f = Path(run_dir) / "samples.csv"
    if not f.is_file():
        return None
    df = pd.read_csv(f, usecols=["sample_id", "depth", "correct"], dtype={"sample_id": str})
    last = df[df["depth"] == df["depth"].max()]
    return dict(zip(last["sample_id"], last["correct"].astype(bool)))


def _above(r: dict) -> bool | None:
    """Whether an analyze run is above chance: recorded, else judged from its samples.csv (older runs)."""
    if r.get("above_chance") is not None:
        return r["above_chance"]
    try:
        from ..analyze import chance_of_run
        return chance_of_run(r["_dir"])[0] if r.get("_dir") else None
    except (OSError, KeyError, ValueError):
        return None


def s_letter(R, tmp) -> str:
    """Letter-format controls side by side (the letter bound late, arXiv 2407.15018): the published letters, other
    letters (--letters) and permuted options (--permute) on the same questions, with each variant's accuracy minus
    the plain run's, paired per question (bootstrap CI)."""
    import numpy as np

    from ..metrics.bootstrap import bootstrap_mean_ci
    H, out, groups = _h(), [], {}
    for a in R["analysis"]:
        if a.get("format") == "letter":
            groups.setdefault((Path(str(a.get("model"))).name, a.get("task"), a.get("split"), a.get("n_samples")),
                              []).append(a)
    for (model, task, _split, n), runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len(runs) < 2 or not any(r.get("task_variant") for r in runs):
            continue
        plain = next((r for r in runs if not r.get("task_variant")), None)
        ref = _final_correct(plain["_dir"]) if plain and plain.get("_dir") else None
        rows = []
        for r in sorted(runs, key=lambda r: str(r.get("task_variant") or "")):
            diff = "-"
            got = _final_correct(r["_dir"]) if r.get("_dir") and r is not plain else None
            if ref and got and set(got) == set(ref):
                d = np.array([float(got[k]) - float(ref[k]) for k in ref])
                lo, hi = bootstrap_mean_ci(d, 1000, seed=0)
                diff = f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"
            rows.append([r.get("task_variant") or "plain (published letters)",
                         f"{r['acc']:.3f} {H.ci(r.get('acc_ci'))}",
                         {True: "yes", False: "no"}.get(_above(r), "not recorded"),
                         H._est_cell((r.get("estimators") or {}).get("decision_depth_pred")), diff])
        out.append(f"<h3>{H.esc(model)} · {H.esc(task)} (letter format, n = {n})</h3>"
                   + H.table(["variant", "accuracy [95% CI]", "above chance", "decision depth (pred)",
                              "accuracy - plain, paired [95% CI]"], rows, "no runs"))
    return "".join(out)
