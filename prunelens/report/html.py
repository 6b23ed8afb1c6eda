"""Build one self-contained HTML file from run folders: every image inline as a data: URI, no external URL, no
scripts or stylesheets fetched from anywhere, so it opens offline. It opens with the findings and a table of
contents; every figure is redrawn from its JSON with the current plotting code and numbered, with a caption naming
model, task, format, score, n and the seeds; a figure that would be empty is replaced by a sentence saying why;
sections without data are listed as empty. No value is printed as a Python repr (None, lists, dicts)."""
from __future__ import annotations

import base64
import html
import re
import tempfile
from pathlib import Path

import numpy as np

from ..analyses import figures as F
from ..analyses import trajectories as T
from .. import plots as P
from ..metrics import IDENTIFIED, identify, tp_ci_text
from ..results import atomic_write_text
from .causal import s_letter, s_readout, s_restore, s_skips  # noqa: F401 - sections, looked up by name
from .collect import collect
from .plan import s_plan  # noqa: F401 - a section, looked up by name
from .findings import claim_table, findings

CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:12px;margin:.5em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;overflow-wrap:anywhere}th{background:#eee}
img{max-width:100%;height:auto;box-sizing:border-box;border:1px solid #ddd;margin:4px 0}figure{margin:1em 0}
figcaption{font-size:12px;color:#333;max-width:100%}.holds{color:#070}.does{color:#b00}.not{color:#888}.differs{color:#a50}
h2{border-bottom:2px solid #444;margin-top:1.6em}.note{color:#666;font-size:12px}nav ol{columns:2;font-size:14px}"""

SECTIONS = [("findings", "Findings: do the paper's claims hold here?"), ("summary", "Models and tasks"),
            ("dm", "Decision Margin by depth and Transition Point"),
            ("of", "Option Frequency and KL to labels"), ("trajectories", "Pruning trajectories"),
            ("removed", "Removed layers"), ("cka", "CKA between pruned and dense"), ("noise", "Noise sensitivity"),
            ("ablation", "Transition ablation"), ("correlation", "Critical ratio vs Transition Point"),
            ("recovery", "Recovery by fine-tuning"), ("readout", "Readouts beyond the logit lens"),
            ("letter", "Letter and order controls"),
            ("restore", "Restore-patching: is the loss in the Silent-Phase states?"),
            ("skips", "Skip effects"), ("plan", "How many layers can go: plan and its evaluation")]


def esc(x) -> str:
    return html.escape(str(x))


def img(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{esc(Path(path).name)}" src="data:image/png;base64,{data}">'


def cell(x) -> str:
    """A value for people: None -> "–", lists and dicts spelled out, floats to 3 decimals; never a Python repr."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.3f}"
    if isinstance(x, (list, tuple)):
        return ", ".join(cell(v) for v in x)
    if isinstance(x, dict):
        return ", ".join(f"{k} {cell(v)}" for k, v in x.items())
    return str(x)


def _tp(x) -> str:
    """A Transition Point: None is "none" (no transition)."""
    return "none" if x is None else str(x)


def table(header, rows, empty: str = "no rows", raw: bool = False) -> str:
    """raw: the cells are HTML the caller has escaped."""
    if not rows:
        return f"<p class=note>No table: {esc(empty)}.</p>"
    h = "".join(f"<th>{esc(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(cell(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def f3(x) -> str:
    return "" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def ci(c) -> str:
    return "" if not c or any(v is None for v in c) else f"[{c[0]:.3f}, {c[1]:.3f}]"


def _title(r) -> str:
    # a control variant of the task (other letters, permuted options) must never read as the plain run
    v = f" ({r['task_variant']})" if r.get("task_variant") else ""
    return esc(f"{Path(str(r.get('model', '?'))).name} · {r.get('task', '')}{v}")


# ---- figures: numbered, captioned, redrawn from the JSON; never empty ------------------------------------------------
_FIGS: list = []                                   # figures of the report being built (build_report resets it)


def figure(path, caption: str) -> str:
    _FIGS.append(Path(path))
    n = len(_FIGS)
    return (f'<figure id="fig{n}">{img(path)}<figcaption><b>Figure {n}.</b> {esc(caption)}</figcaption></figure>')


def no_figure(what: str, why: str) -> str:
    return f"<p class=note>No figure of {esc(what)}: {esc(why)}.</p>"


def _draw(draw, path, what: str, caption: str, stored=None) -> str:
    """`draw(path)` with the current plotting code (PNG + SVG into the report's temporary folder); if that fails,
    the run's stored PNG with a note, else a sentence saying why there is no figure."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        p = draw(Path(path))
    except Exception as e:  # noqa: BLE001 - one bad result must not sink the whole report
        import matplotlib.pyplot as plt
        plt.close("all")
        if stored is not None and Path(stored).is_file():
            return figure(stored, caption + f" (as stored by the run: redrawing failed, {type(e).__name__}: {e})")
        return no_figure(what, f"it could not be drawn ({type(e).__name__}: {e})")
    return figure(p, caption)


def _stored(r, name):
    return Path(r["_dir"]) / name if r.get("_dir") else None


def _n_txt(n) -> str:
    if isinstance(n, dict):
        return ", ".join(f"{k} {v}" for k, v in n.items()) + " questions"
    return "not recorded" if n is None else f"{n} questions"


def _seeds(r) -> str:
    """Every seed the result records, named."""
    p, cfg, out = r.get("params") or {}, r.get("config") or {}, []
    if cfg.get("sample"):
        out.append(f"questions sampled with seed {cfg.get('seed', 0)}")
    if p.get("seed_prune") is not None:
        out.append(f"pruning seed {p['seed_prune']}")
    if r.get("seeds"):
        out.append("seeds " + cell(list(r["seeds"])))
    if r.get("seed") is not None:
        out.append(f"seed {r['seed']}")
    n_boot = p.get("n_boot", cfg.get("n_boot"))
    if n_boot:
        bs = p.get("boot_seed", cfg.get("seed"))
        out.append(f"CIs: question bootstrap, {n_boot} resamples" + (f" (seed {bs})" if bs is not None else ""))
    return "; ".join(out)


def _meta(r, *, score=None, n=None, task=None) -> str:
    """Model, task (split), format, score, n and seeds of a result, for a caption."""
    p = r.get("params") or {}
    fmt = r.get("format") or p.get("format")
    score = score or r.get("score") or r.get("score_kind") or p.get("score")
    margin = r.get("margin") or p.get("margin")
    task = task or r.get("task") or (cell(r["tasks"]) if r.get("tasks") else "not recorded")
    n = n if n is not None else r.get("n_samples", r.get("n_eval"))
    parts = [f"Model {Path(str(r.get('model') or 'not recorded')).name}",
             f"task {task}" + (f" ({r['split']} split)" if r.get("split") else "")
             + (f", control variant: {r['task_variant']}" if r.get("task_variant") else ""),
             f"format {fmt or 'not recorded'}",
             f"score {score or 'not recorded'}" + (f", margin {margin}" if margin else ""),
             f"n = {_n_txt(n)}"]
    seeds = _seeds(r)
    return ", ".join(parts) + "." + (f" {seeds[0].upper()}{seeds[1:]}." if seeds else "")


def _tp_caption(r) -> str:
    ci_ = r.get("tp_ci")
    if not ci_:
        return "no TP CI in this file (`prunelens transition --write` adds it)"
    txt = f"TP {_tp(r.get('transition_point'))}, 95% CI {tp_ci_text(ci_)}"
    if ci_[1] is None:
        txt += (f"; the upper bound is 'no TP' ({r.get('tp_none_frac') or 0:.0%} of resamples), drawn as an open "
                "hatched span to the last depth")
    return txt


def _tp_ci(a) -> str:
    if not a.get("tp_ci"):
        return ""
    return tp_ci_text(a["tp_ci"]) + (
        f" ({a['tp_none_frac']:.0%} none)" if a.get("tp_none_frac") else "")


EST_KEYS = ("mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint")
EST_HEAD = ["TP verdict", "decision depth (pred)", "decision depth (gold)", "acc change-point"]
EST_NOTE = ("<p class=note>Transition estimators: point [95% CI] (none = no transition in that tail), ✓ identified "
            "at this n / ✗ not (a rule on the CI: both bounds inside 1..L-1 and at most L/4 apart; "
            "prunelens/metrics/estimators.py). Decision depth: median depth from which a question's lens prediction "
            "stays at its final prediction (pred) or at the gold option (gold), Kaplan-Meier with never-decided "
            "questions censored; change-point: half-rise depth of layer accuracy.</p>")


def _est_cell(e: dict | None) -> str:
    from ..metrics.estimators import estimator_cell
    return estimator_cell(e, marks=(" ✓", " ✗"), empty="")


def _est_cells(a: dict) -> list[str]:
    """The four estimator cells of a run or step; without an estimators block, the TP's verdict from its tp_ci."""
    est = a.get("estimators") or {}
    cells = [_est_cell(est.get(k)) for k in EST_KEYS]
    if not cells[0] and a.get("tp_ci") and a.get("num_layers"):
        v, _ = identify(a["tp_ci"], a["num_layers"])
        cells[0] = "✓" if v == IDENTIFIED else "✗"
    elif cells[0]:
        cells[0] = cells[0].rsplit(" ", 1)[1]           # the TP and its CI have their own columns
    return cells


def s_summary(R, tmp) -> str:
    rows = [[Path(str(a["model"])).name, a["task"], a["format"], a.get("split"), a["n_samples"], f3(a["acc"]),
             ci(a.get("acc_ci")), f3(a.get("dm_final")), _tp(a.get("transition_point")), _tp_ci(a), *_est_cells(a),
             a["num_layers"]] for a in R["analysis"]]
    out = table(["model", "task", "format", "split", "n", "acc", "95% CI", "final DM", "TP", "TP 95% CI", *EST_HEAD,
                 "L"], rows) + EST_NOTE if rows else ""
    other = sorted({f"{k}: {_title(r)}" for k in ("cka", "noise", "ablation", "recovery", "controls", "trajectory")
                    for r in R[k]})
    return out + ("<p class=note>other results: " + "; ".join(other) + "</p>" if other else "")


def s_dm(R, tmp) -> str:
    out = []
    for i, a in enumerate(R["analysis"]):
        d = Path(tmp) / f"analysis{i}"
        body = _draw(lambda p: P.plot_dm(a, p), d / "dm_by_depth.png", "the Decision Margin",
                     "Decision Margin by depth: mean with its 95% bootstrap band, median, and layer accuracy (right "
                     "axis); grey: Silent phase, dashed: Transition Point, red span: the TP's 95% CI ("
                     + _tp_caption(a) + "). " + _meta(a), _stored(a, "dm_by_depth.png"))
        if a.get("estimators"):
            body += _draw(lambda p: P.plot_decision_depth(a, p), d / "decision_depth.png", "the decision depth",
                          "Fraction of questions decided by each depth (Kaplan-Meier, never-decided questions "
                          "censored, 95% bootstrap bands); bars below: each transition estimator's 95% CI (solid: "
                          "identified, dotted: not). " + _meta(a), _stored(a, "decision_depth.png"))
        else:
            body += no_figure("the decision depth", "this analysis.json has no estimators block (rerun analyze, or "
                              "`prunelens transition --write`)")
        out.append(f"<h3>{_title(a)}</h3>" + body)
    return "".join(out)


def s_of(R, tmp) -> str:
    out = []
    for i, a in enumerate(R["analysis"]):
        d = Path(tmp) / f"analysis{i}"
        labels = P.label_shares(a, a.get("_dir"))
        body = _draw(lambda p: P.plot_of_heatmap(a, p, labels=labels), d / "of_heatmap.png", "the Option Frequency",
                     "Option Frequency by depth: the share of questions whose lens prediction is each option position, "
                     "colour scale fitted to the data; right column: the gold-label shares it is compared with"
                     + ("" if labels else " (not recorded: no samples.csv beside analysis.json)")
                     + "; dashed: Transition Point. " + _meta(a), _stored(a, "of_heatmap.png"))
        body += _draw(lambda p: P.plot_kl(a, p), d / "kl_by_depth.png", "KL to the labels",
                      "KL(OF ‖ label distribution), entropy of OF and top-option share by depth; grey: Silent phase, "
                      "red span: the TP's 95% CI (" + _tp_caption(a) + "). " + _meta(a), _stored(a, "kl_by_depth.png"))
        out.append(f"<h3>{_title(a)}</h3>" + body)
    return "".join(out)


def _pooled_steps(ms: list[dict]) -> list[dict]:
    """One method's pruned steps; several trajectories of it (random seeds) pooled per ratio: mean and std."""
    if len(ms) == 1:
        return [{**s, "acc": T.final_acc(s)} for s in ms[0].get("steps", []) if s.get("removed") != []]
    by: dict = {}
    for m in ms:
        for s in m.get("steps", []):
            if s.get("removed") != []:
                by.setdefault(round(s.get("ratio", 0.0), 6), []).append(T.final_acc(s))
    return [{"ratio": r, "acc": float(np.mean(v)), "acc_std": float(np.std(v))} for r, v in sorted(by.items())]


def s_trajectories(R, tmp) -> str:
    groups: dict = {}
    for t in R["trajectory"]:
        groups.setdefault((str(t.get("model")), t.get("task")), {}).setdefault(T.method(t), []).append(t)
    for c in R["controls"]:
        for name, m in c["methods"].items():
            if name != "ip":       # labelled apart: a "tail" or "random" trajectory of the same pair stays drawn
                groups.setdefault((str(c.get("model")), c.get("task")), {})[f"{name} (controls)"] = \
                    [{**m, "_controls": c}]
    out = []
    for i, ((model, task), methods) in enumerate(sorted(groups.items(), key=str)):
        first = next(iter(methods.values()))[0]
        ref = first.get("_controls", first)
        dense = next((T.final_acc(T.dense(m)) for ms in methods.values() for m in ms if "steps" in m and T.dense(m)),
                     None)
        steps, seeds = {}, []
        for n, ms in methods.items():
            seeds += [str(m["params"]["seed_prune"]) for m in ms if (m.get("params") or {}).get("seed_prune")
                      is not None]
            for m in ms:
                if m.get("_controls") and m.get("steps"):
                    seeds += [str(x) for x in m["steps"][0].get("seeds") or []]
            steps[n if len(ms) == 1 else f"{n} (mean ± std of {len(ms)} seeds)"] = {"steps": _pooled_steps(ms)}
        steps = {k: v for k, v in steps.items() if v["steps"]}
        head = f"<h3>{esc(Path(model).name)} · {esc(task)}</h3>"
        if not steps:
            out.append(head + no_figure("accuracy vs pruning ratio", "no pruned step in these trajectories"))
            continue
        group = {**ref, "params": {k: v for k, v in (ref.get("params") or {}).items() if k != "seed_prune"}}
        cap = ("Task accuracy against pruning ratio for every method (error bars: std over random seeds); dotted: "
               "dense accuracy. " + _meta(group)
               + (f" Random pruning seeds {', '.join(sorted(set(seeds)))}." if seeds else ""))
        out.append(head + _draw(lambda p: F.methods_plot(steps, dense, p, f"{Path(model).name} · {task}"),
                                Path(tmp) / f"traj{i}" / "methods.png", "accuracy vs pruning ratio", cap))
    for i, t in enumerate(R["trajectory"]):
        d, meta = Path(tmp) / f"trajectory{i}", _meta(t)
        body = _draw(lambda p: P.plot_dm_depth(t, p), d / "dm_by_depth.png", "DM by depth of the pruned states",
                     "Mean Decision Margin by depth of the dense and pruned models (same axis rule as the dense plot: "
                     "symlog when a mean exceeds 20 in magnitude); top: each state's Transition Point and its 95% "
                     "CI. " + meta) if P.depth_states(t) else no_figure(
            "DM by depth of the pruned states", "this trajectory.json stores no per-depth DM (dm_mean) for its states")
        body += _draw(lambda p: P.plot_kl_depth(t, p), d / "kl_by_depth.png", "KL by depth of the pruned states",
                      "KL(OF ‖ labels) and accuracy by depth of the dense and pruned models. " + meta) \
            if P.depth_states(t, key="kl_by_depth") else no_figure(
            "KL by depth of the pruned states", "this trajectory.json stores no per-depth KL (kl_by_depth)")
        if P.depth_states(t, key="of_by_depth"):
            body += _draw(lambda p: P.plot_of_depth(t, p), d / "of_by_depth.png", "OF by depth of the pruned states",
                          "Option Frequency by depth of the dense and pruned models, each scaled to its data, with "
                          "the gold-label shares beside it. " + meta)
        elif t.get("steps") and all(s.get("option_frequency") for s in [t.get("dense") or {}] + t["steps"]):
            body += _draw(lambda p: P.plot_of_kl(t, p), d / "of_kl.png", "OF of the pruned states",
                          "Option Frequency at the final depth of every step (scaled to its data) and its KL to the "
                          "labels against pruning ratio; this trajectory.json stores OF at the final depth only "
                          "(trajectories written since of_by_depth was added have it at every depth). " + meta)
        else:
            body += no_figure("OF of the pruned states", "this trajectory.json stores no Option Frequency")
        out.append(f"<h3>{_title(t)} [{esc(T.method(t))}]</h3>" + body)
    return "".join(out)


def s_removed(R, tmp) -> str:
    out = []
    for t in R["trajectory"]:
        try:
            L = T.num_layers(t)
        except ValueError:
            L = None
        rows = [[f3(s.get("ratio")), ", ".join(map(str, s.get("removed", []))), f3(T.final_acc(s)),
                 ci(s.get("acc_ci")), f3(s.get("dm_final")), _tp(s.get("transition_point")), _tp_ci(s),
                 *_est_cells({**s, "num_layers": L and L - len(s.get("removed", []))})] for s in T.steps(t)]
        out.append(f"<h3>{_title(t)} [{esc(T.method(t))}]</h3>"
                   + table(["ratio", "removed (original ids, in order)", "acc", "95% CI", "final DM", "TP",
                            "TP 95% CI", *EST_HEAD], rows, "this trajectory has no steps"))
    for c in R["controls"]:
        for key, label in (("shortgpt_oneshot", "one-shot ShortGPT"), ("angular_oneshot", "Gromov's angular block"),
                           ("tail", "tail: the last k blocks")):
            if key not in c["methods"]:                  # controls written before the tail rule was added
                continue
            paired_ = any(s.get("vs_ip") for s in c["methods"][key]["steps"])
            rows = [[f3(s["ratio"]), ", ".join(map(str, s["removed"])), f3(s["acc"]), ci(s["acc_ci"]),
                     f3(s["dm_final"]),
                     *([f"{s['vs_ip']['d_acc']:+.3f} " + ci(s["vs_ip"]["d_acc_ci"]) if s.get("vs_ip") else ""]
                       if paired_ else [])] for s in c["methods"][key]["steps"]]
            out.append(f"<h3>{_title(c)} [{label}]</h3>"
                       + table(["ratio", "removed", "acc", "95% CI", "final DM",
                                *(["acc - IP (paired, same questions) [95% CI]"] if paired_ else [])], rows, "no steps"))
    return "".join(out)


def s_cka(R, tmp) -> str:
    out = []
    for i, c in enumerate(R["cka"]):
        ev = c.get("pruned_eval")
        acc = (f" Accuracy dense {c['dense_eval']['acc']:.3f} → pruned {ev['acc']:.3f}."
               if ev and c.get("dense_eval") else "")
        kind = "debiased" if c.get("debiased") else "linear"
        meta = _meta(c, score="not applicable (CKA of hidden states)")
        d = Path(tmp) / f"cka{i}"
        body = _draw(lambda p: F.cka_best_match(c, p), d / "cka_best_match.png", "the CKA best match",
                     f"Best-matching dense depth (max {kind} CKA) of each pruned depth, hidden states (token mean) "
                     "and decision token, against the identity diagonal. " + meta, _stored(c, "cka_best_match.png"))
        for sig in ("hidden", "decision"):
            body += _draw(lambda p, sig=sig: F.cka_heatmap(c, sig, p), d / f"cka_{sig}.png", f"the {sig} CKA matrix",
                          f"{kind} CKA between every pruned depth and every dense depth, {sig} "
                          f"{'states (token mean)' if sig == 'hidden' else 'token'}. " + meta,
                          _stored(c, f"cka_{sig}.png"))
        out.append(f"<h3>{_title(c)}: removed layers {esc(cell(c.get('removed')))}</h3><p>{kind} CKA over "
                   f"n={esc(cell(c.get('n_samples')))} prompts.{esc(acc)}</p>" + body)
    return "".join(out)


def s_noise(R, tmp) -> str:
    out = []
    for i, n in enumerate(R["noise"]):
        rows = [[f"{p['alpha']:g}", f3(p["silent_drop"]), f3(p["decisive_drop"]), f3(p.get("silent_acc_drop")),
                 f3(p.get("decisive_acc_drop"))] for p in n["phase_sensitivity"]]
        meta, d = _meta(n), Path(tmp) / f"noise{i}"
        figs = _draw(lambda p: F.noise_heatmaps(n, p), d / "noise_heatmap.png", "the noise sensitivity",
                     "Final DM (left) and accuracy (right) with Gaussian noise of relative size α added at each "
                     f"depth, mean over seeds {cell(n.get('seeds'))}; dashed: clean Transition Point "
                     f"({_tp(n['clean'].get('transition_point'))}). " + meta, _stored(n, "noise_heatmap.png"))
        figs += _draw(lambda p: F.noise_lines(n, p), d / "noise_lines.png", "the noise sensitivity by depth",
                      f"Final DM against the noised depth, mean ± std over seeds {cell(n.get('seeds'))}, one line "
                      "per α; grey: Silent phase; dotted: clean final DM. " + meta, _stored(n, "noise_lines.png"))
        out.append(f"<h3>{_title(n)}</h3><p class=note>n={esc(cell(n.get('n_samples')))}, seeds "
                   f"{esc(cell(n.get('seeds')))}, TP {esc(_tp(n['clean'].get('transition_point')))}, clean final DM "
                   f"{n['clean']['dm_final']:.3f}</p>"
                   + table(["α", "mean DM drop, Silent", "mean DM drop, Decisive", "mean acc drop, Silent",
                            "mean acc drop, Decisive"], rows, "no phase sensitivity rows") + figs)
    return "".join(out)


def s_ablation(R, tmp) -> str:
    out = []
    for i, a in enumerate(R["ablation"]):
        hdr = (["removed", "vs TP"] + [h for t in a["tasks"] for h in (f"{t} acc", f"{t} Δ acc")]
               + ["avg acc", "avg final DM"])
        rows = [[r["label"], ",".join(f"{x:+d}" for x in r["relative_to_tp"])]
                + [c for t in a["tasks"] for c in (
                    f"{r['tasks'][t]['acc']:.3f} {ci(r['tasks'][t]['acc_ci'])}",
                    f"{r['tasks'][t]['d_acc']:+.3f} {ci(r['tasks'][t]['d_acc_ci'])}" if "d_acc" in r["tasks"][t]
                    else "")]
                + [f3(r["avg_acc"]), f3(r["avg_dm"])] for r in a["rows"]]
        task_tp = ", ".join(f"{k} {_tp(v)}" for k, v in (a.get("task_tp") or {}).items()) or "not recorded"
        fig = _draw(lambda p: F.ablation_bars(a, p), Path(tmp) / f"ablation{i}" / "ablation.png", "the ablation",
                    f"Accuracy of each task (points) and their average (bars) with the named layers removed around "
                    f"the reference TP {a['tp']}. " + _meta(a), _stored(a, "ablation.png")) if a["rows"] else \
            no_figure("the ablation", "ablation.json has no rows")
        out.append(f"<p>Reference TP = {esc(_tp(a['tp']))} ({esc(cell(a.get('tp_source')))}); per-task TP "
                   f"{esc(task_tp)}. Δ: change against dense on the same samples, with a paired bootstrap 95% CI.</p>"
                   + table(hdr, rows, "no ablation rows") + fig)
    return "".join(out)


def _corr_meta(c, R) -> str:
    pts = c.get("points", [])
    models = sorted({Path(str(p.get("model"))).name for p in pts}) or ["not recorded"]
    tasks = sorted({str(p.get("task")) for p in pts}) or ["not recorded"]
    ps = [t.get("params") or {} for t in R["trajectory"]]
    fmts = sorted({str(p["format"]) for p in ps if p.get("format")}) or ["not recorded"]
    scores = sorted({str(p["score"]) for p in ps if p.get("score")}) or ["not recorded"]
    ns = sorted({str(t["n_samples"]) for t in R["trajectory"] if t.get("n_samples")})
    return (f"Models {', '.join(models)}, tasks {', '.join(tasks)}, format {', '.join(fmts)}, score "
            f"{', '.join(scores)}, n = {c.get('n')} (model, task) pairs"
            + (f" of {', '.join(ns)} questions each" if ns else "") + f", γ = {c.get('gamma')}.")


def s_correlation(R, tmp) -> str:
    out = []
    for i, c in enumerate(R["correlation"]):
        rows = [[Path(str(p["model"])).name, p["task"], p["method"], f3(p["tp_relative"]), f3(p["critical_ratio"]),
                 "yes" if p["censored"] else "running" if p.get("running") else ""] for p in c["points"]]
        r = f"r = {c['r']:.3f}, p = {c['p']:.3g}" if c.get("r") is not None else "r undefined"
        usable = [p for p in c["points"] if p.get("tp_relative") is not None and p.get("critical_ratio") is not None]
        fig = _draw(lambda p: F.correlation_scatter(c, p), Path(tmp) / f"correlation{i}" / "correlation.png",
                    "the correlation", "Critical pruning ratio against the relative Transition Point, each with the "
                    "TP's 95% CI as a bar, and the least-squares line. " + _corr_meta(c, R),
                    _stored(c, "correlation.png")) if usable else no_figure(
            "the correlation", "no (model, task) pair has both a Transition Point and a critical ratio")
        from ..metrics.estimators import NAMES
        est = [[NAMES.get(k, k), str(b["n"]), str(b.get("n_identified")), f3(b.get("r")), ci(b.get("r_ci")),
                f3(b.get("p"))] for k, b in (c.get("by_estimator") or {}).items()]
        fig_e = _draw(lambda p: F.correlation_by_estimator(c, p), Path(tmp) / f"correlation{i}" /
                      "correlation_by_estimator.png", "the correlation by estimator",
                      "The same correlation with each transition estimator in place of the TP (filled: identified; "
                      "bars: its 95% CI). " + _corr_meta(c, R), _stored(c, "correlation_by_estimator.png")) \
            if any(b["n"] for b in (c.get("by_estimator") or {}).values()) else ""
        out.append(f"<p>{esc(r)}, n = {c['n']} (γ = {c['gamma']}).</p>"
                   + table(["model", "task", "method", "TP/L", "critical ratio", "censored"], rows,
                           "no (model, task) pairs") + fig
                   + "<p>With each transition estimator in place of the TP (Pearson r, Fisher-z 95% CI):</p>"
                   + table(["estimator", "points", "identified", "r", "95% CI", "p"], est, "no estimators stored")
                   + fig_e)
    return "".join(out)


def s_recovery(R, tmp) -> str:
    out = []
    for i, r in enumerate(R["recovery"]):
        rows = [[f3(x["ratio"]), ", ".join(map(str, x["removed"])), f3(x["before"]["acc"]), f3(x["after"]["acc"]),
                 f3(x["before"]["dm_final"]), f3(x["after"]["dm_final"]), _tp(x["before"].get("transition_point")),
                 _tp(x["after"].get("transition_point")), f3(x["loss_before"]["eval"]), f3(x["loss_after"]["eval"])]
                for x in r["runs"]]
        d = r.get("dense", {})
        fig = _draw(lambda p: F.recovery_plot(r, p), Path(tmp) / f"recovery{i}" / "recovery.png", "the recovery",
                    f"Final DM (left) and accuracy (right) of the pruned models before and after {r['mode']} "
                    f"fine-tuning ({r['steps']} steps) at each pruning ratio. "
                    + _meta(r, n=r.get("n_eval")), _stored(r, "recovery.png")) if r["runs"] else no_figure(
            "the recovery", "recovery.json has no runs")
        out.append(f"<h3>{_title(r)}</h3><p class=note>{esc(r['mode'])}, {r['steps']} steps, lr {r['lr']}, seed "
                   f"{esc(cell(r.get('seed')))}, trained on {esc(cell(r.get('train_task')))}/"
                   f"{esc(cell(r.get('train_split')))} (n={esc(cell(r.get('n_train')))}), evaluated on "
                   f"{esc(cell(r.get('task')))}/{esc(cell(r.get('split')))} (n={esc(cell(r.get('n_eval')))}); dense "
                   f"acc {f3(d.get('acc'))}, DM {f3(d.get('dm_final'))}</p>"
                   + table(["ratio", "removed", "acc before", "acc after", "DM before", "DM after", "TP before",
                            "TP after", "eval loss before", "after"], rows, "no recovery runs") + fig)
    return "".join(out)


def _plain(text: str) -> str:
    """Evidence text for people: a missing value is "none", never Python's None."""
    return re.sub(r"\bNone\b", "none", str(text))


def _per_model(R) -> str:
    """With results of two or more models: each claim's verdict per model and jointly (a claim that holds on one
    family and does not hold on another is that finding)."""
    t = claim_table(R)
    if len(t["models"]) < 2:
        return ""
    def cell(st, ev=""):
        return f"<b class='{st.split()[0]}' title='{esc(_plain(ev))}'>{esc(st)}</b>"
    rows = [[esc(_plain(r["claim"]))] + [cell(r["per_model"][m]["status"], r["per_model"][m]["evidence"])
                                         for m in t["models"]] + [cell(r["joint"], r["joint_note"])]
            for r in t["rows"]]
    return ("<h3>Per model, and jointly</h3><p class=note>Each model's verdict from its own runs (hover for the "
            "evidence); joint: holds / does not hold only when it does on every model with data; <b class=differs>"
            "differs by model</b> when it holds on one and does not hold on another; a claim measured on one model "
            "only has no joint verdict; pooled-only claims (the correlation over points) keep the pooled verdict."
            "</p>" + table(["claim", *t["models"], "joint"], rows, "no claims", raw=True)
            + "<h3>All runs pooled</h3>")


def s_findings(R, tmp) -> str:
    fs = findings(R)
    counts = {st: sum(f.status == st for f in fs) for st in ("holds", "does not hold", "not resolved at this n",
                                                               "not enough data")}
    items = "".join(f"<li><b class='{f.status.split()[0]}'>{esc(f.status)}</b>: {esc(_plain(f.claim))}<br>"
                    f"<span class=note>{esc(_plain(f.evidence))}</span></li>" for f in fs)
    return ("<p>" + esc(", ".join(f"{v} {k}" for k, v in counts.items() if v)) + f" ({len(fs)} claims).</p>"
            "<p class=note>Every verdict is read off a 95% interval, shown with the numbers: <b class=holds>holds</b> "
            "= the interval excludes the null; <b class=does>does not hold</b> = it excludes the claim; "
            "<b class=not>not resolved at this n</b> = it contains both (more questions or seeds could decide it); "
            "not enough data = nothing to decide on.</p>" + _left_out(R) + _per_model(R) + f"<ol>{items}</ol>")


def _left_out(R) -> str:
    from .findings import at_chance
    gone = at_chance(R)
    if not gone:
        return ""
    li = "".join(f"<li>{kind} {esc(Path(str(r.get('model', '?'))).name)}/{esc(str(r.get('task', '?')))}"
                 + (f" ({esc(r['_dir'])})" if r.get("_dir") else "") + f": {esc(why)}</li>" for kind, why, r in gone)
    return ("<p class=note>Left out of every claim as <b>at chance</b>, with every result on the same questions "
            "(the dense accuracy's 95% Wilson interval reaches the uniform chance or the accuracy of always giving one "
            "option: the model decides nothing there):</p>"
            f"<ul class=note>{li}</ul>")


def build_report(run_dirs, out, title: str = "prunelens report", figures_dir=None, findings_dir=None) -> Path:
    """Write the report to `out`; returns its path. Correlation is computed on the fly when trajectories exist
    but no correlation.json was given. Figures are redrawn from the JSONs into a temporary folder (PNG + SVG) and
    embedded as PNG; with `figures_dir`, each figure is also kept there as figNN_<name>.png and .svg (the number is
    the caption's). findings_dir: also write findings.json (every claim pooled, per model and jointly:
    `claim_table`) and findings.md (that table in Markdown) there."""
    R = collect(run_dirs)
    from .findings import at_chance
    R["_at_chance"] = at_chance(R)        # read by every claim section: judged once (it may read samples.csv files)
    _FIGS.clear()
    with tempfile.TemporaryDirectory() as tmp:
        if not R["correlation"] and R["trajectory"]:
            from ..analyses.run import run_correlation
            c = run_correlation(Path(tmp) / "corr", [r["_file"] for r in R["trajectory"]])
            R["correlation"].append({**c, "_dir": str(Path(tmp) / "corr")})
        if findings_dir is not None:
            from ..results import write_json
            from .findings import claim_table_md
            t = claim_table(R)
            write_json(Path(findings_dir) / "findings.json", {"schema": "prunelens.findings/1", **t})
            atomic_write_text(Path(findings_dir) / "findings.md", claim_table_md(t))
        body, toc = [], []
        for key, name in SECTIONS:
            content = globals()[f"s_{key}"](R, tmp)
            toc.append(f'<li><a href="#{key}">{esc(name)}</a>'
                       + ("" if content else " <span class=note>(no data)</span>") + "</li>")
            body.append(f'<section id="{key}"><h2>{esc(name)}</h2>'
                        + (content or "<p class=note>no data for this section in the given runs</p>") + "</section>")
        skipped = "".join(f"<li>{esc(s)}</li>" for s in R["_skipped"])
        nav = f'<nav id="toc"><h2>Contents</h2><ol>{"".join(toc)}</ol><p class=note>{len(_FIGS)} figures.</p></nav>'
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style>"
               f"</head><body><h1>{esc(title)}</h1><p class=note>runs: {esc(', '.join(map(str, run_dirs)))}</p>"
               + nav + "".join(body) + (f"<h2>Skipped files</h2><ul>{skipped}</ul>" if skipped else "")
               + "</body></html>")
        if figures_dir is not None:
            import shutil
            fd = Path(figures_dir)
            fd.mkdir(parents=True, exist_ok=True)
            for n, f in enumerate(_FIGS, 1):
                for src in (f, f.with_suffix(".svg")):
                    if src.is_file():
                        shutil.copyfile(src, fd / f"fig{n:02d}_{src.name}")
    return atomic_write_text(out, doc)
