"""Build one self-contained HTML file from run folders: every image inline as a data: URI, no external URL, no
scripts or stylesheets fetched from anywhere, so it opens offline. Sections without data are listed as empty."""
from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from ..analyses import figures as F
from ..analyses import trajectories as T
from ..metrics import IDENTIFIED, identify, tp_ci_text
from ..results import atomic_write_text
from .collect import collect
from .findings import findings

CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;
font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}
img{max-width:100%;border:1px solid #ddd;margin:4px 0}.holds{color:#070}.does{color:#b00}.not{color:#888}
h2{border-bottom:2px solid #444;margin-top:1.6em}.note{color:#666;font-size:12px}"""

SECTIONS = [("summary", "Models and tasks"), ("dm", "Decision Margin by depth and Transition Point"),
            ("of", "Option Frequency and KL to labels"), ("trajectories", "Pruning trajectories"),
            ("removed", "Removed layers"), ("cka", "CKA between pruned and dense"), ("noise", "Noise sensitivity"),
            ("ablation", "Transition ablation"), ("correlation", "Critical ratio vs Transition Point"),
            ("recovery", "Recovery by fine-tuning"), ("findings", "Findings: do the paper's claims hold here?")]


def esc(x) -> str:
    return html.escape(str(x))


def img(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{esc(Path(path).name)}" src="data:image/png;base64,{data}">'


def table(header, rows) -> str:
    h = "".join(f"<th>{esc(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def f3(x) -> str:
    return "" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def ci(c) -> str:
    return "" if not c else f"[{c[0]:.3f}, {c[1]:.3f}]"


def _title(r) -> str:
    return esc(f"{Path(str(r.get('model', '?'))).name} · {r.get('task', '')}")


def _plots(r, names) -> str:
    return "".join(img(Path(r["_dir"]) / p) for p in r.get("plots", []) if p in names and (Path(r["_dir"]) / p).is_file())


def _tp_ci(a) -> str:
    if "tp_ci" not in a:
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
    if not e:
        return ""
    return (f"{'none' if e['point'] is None else e['point']} {tp_ci_text(e['ci'])} "
            + ("✓" if e["verdict"] == IDENTIFIED else "✗"))


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
    rows = [[Path(str(a["model"])).name, a["task"], a["format"], a["split"], a["n_samples"], f3(a["acc"]),
             ci(a.get("acc_ci")), f3(a.get("dm_final")), a.get("transition_point"), _tp_ci(a), *_est_cells(a),
             a["num_layers"]] for a in R["analysis"]]
    out = table(["model", "task", "format", "split", "n", "acc", "95% CI", "final DM", "TP", "TP 95% CI", *EST_HEAD,
                 "L"], rows) + EST_NOTE if rows else ""
    other = sorted({f"{k}: {_title(r)}" for k in ("cka", "noise", "ablation", "recovery", "controls", "trajectory")
                    for r in R[k]})
    return out + ("<p class=note>other results: " + "; ".join(other) + "</p>" if other else "")


def s_dm(R, tmp) -> str:
    return "".join(f"<h3>{_title(a)}</h3>" + _plots(a, ["dm_by_depth.png", "decision_depth.png"])
                   for a in R["analysis"])


def s_of(R, tmp) -> str:
    return "".join(f"<h3>{_title(a)}</h3>" + _plots(a, ["of_heatmap.png", "kl_by_depth.png"]) for a in R["analysis"])


def s_trajectories(R, tmp) -> str:
    groups: dict = {}
    for t in R["trajectory"]:
        groups.setdefault((str(t.get("model")), t.get("task")), {})[T.method(t)] = t
    for c in R["controls"]:
        for name, m in c["methods"].items():
            if name != "ip":
                groups.setdefault((str(c.get("model")), c.get("task")), {})[name] = m
    out = []
    for i, ((model, task), methods) in enumerate(sorted(groups.items(), key=str)):
        dense = next((T.final_acc(T.dense(m)) for m in methods.values() if "steps" in m and T.dense(m)), None)
        steps = {n: {"steps": [{**s, "acc": T.final_acc(s)} for s in m["steps"] if s.get("removed") != []]}
                 for n, m in methods.items()}
        p = F.methods_plot(steps, dense, Path(tmp) / f"traj{i}.png", f"{Path(model).name} · {task}")
        out.append(f"<h3>{esc(Path(model).name)} · {esc(task)}</h3>" + img(p))
    return "".join(out)


def s_removed(R, tmp) -> str:
    out = []
    for t in R["trajectory"]:
        try:
            L = T.num_layers(t)
        except ValueError:
            L = None
        rows = [[f3(s.get("ratio")), ", ".join(map(str, s.get("removed", []))), f3(T.final_acc(s)),
                 ci(s.get("acc_ci")), f3(s.get("dm_final")), s.get("transition_point"), _tp_ci(s),
                 *_est_cells({**s, "num_layers": L and L - len(s.get("removed", []))})] for s in T.steps(t)]
        out.append(f"<h3>{_title(t)} [{esc(T.method(t))}]</h3>"
                   + table(["ratio", "removed (original ids, in order)", "acc", "95% CI", "final DM", "TP",
                            "TP 95% CI", *EST_HEAD], rows))
    for c in R["controls"]:
        rows = [[f3(s["ratio"]), ", ".join(map(str, s["removed"])), f3(s["acc"]), ci(s["acc_ci"]), f3(s["dm_final"])]
                for s in c["methods"]["shortgpt_oneshot"]["steps"]]
        out.append(f"<h3>{_title(c)} [one-shot ShortGPT]</h3>"
                   + table(["ratio", "removed", "acc", "95% CI", "final DM"], rows))
    return "".join(out)


def s_cka(R, tmp) -> str:
    out = []
    for c in R["cka"]:
        ev = c.get("pruned_eval")
        acc = f" Accuracy dense {c['dense_eval']['acc']:.3f} → pruned {ev['acc']:.3f}." if ev else ""
        out.append(f"<h3>{_title(c)}: removed {esc(c['removed'])}</h3><p>{'debiased' if c.get('debiased') else 'linear'}"
                   f" CKA over n={c.get('n_samples')} prompts.{esc(acc)}</p>"
                   + _plots(c, ["cka_best_match.png", "cka_hidden.png", "cka_decision.png"]))
    return "".join(out)


def s_noise(R, tmp) -> str:
    out = []
    for n in R["noise"]:
        rows = [[f"{p['alpha']:g}", f3(p["silent_drop"]), f3(p["decisive_drop"]), f3(p.get("silent_acc_drop")),
                 f3(p.get("decisive_acc_drop"))] for p in n["phase_sensitivity"]]
        out.append(f"<h3>{_title(n)}</h3><p class=note>n={n.get('n_samples')}, seeds {esc(n['seeds'])}, TP "
                   f"{n['clean'].get('transition_point')}, clean final DM {n['clean']['dm_final']:.3f}</p>"
                   + table(["α", "mean DM drop, Silent", "mean DM drop, Decisive", "mean acc drop, Silent",
                            "mean acc drop, Decisive"], rows)
                   + _plots(n, ["noise_heatmap.png", "noise_lines.png"]))
    return "".join(out)


def s_ablation(R, tmp) -> str:
    out = []
    for a in R["ablation"]:
        hdr = (["removed", "vs TP"] + [h for t in a["tasks"] for h in (f"{t} acc", f"{t} Δ acc")]
               + ["avg acc", "avg final DM"])
        rows = [[r["label"], ",".join(f"{x:+d}" for x in r["relative_to_tp"])]
                + [c for t in a["tasks"] for c in (
                    f"{r['tasks'][t]['acc']:.3f} {ci(r['tasks'][t]['acc_ci'])}",
                    f"{r['tasks'][t]['d_acc']:+.3f} {ci(r['tasks'][t]['d_acc_ci'])}" if "d_acc" in r["tasks"][t]
                    else "")]
                + [f3(r["avg_acc"]), f3(r["avg_dm"])] for r in a["rows"]]
        out.append(f"<p>Reference TP = {a['tp']} ({esc(a['tp_source'])}); per-task TP {esc(a['task_tp'])}. "
                   "Δ: change against dense on the same samples, with a paired bootstrap 95% CI.</p>"
                   + table(hdr, rows) + _plots(a, ["ablation.png"]))
    return "".join(out)


def s_correlation(R, tmp) -> str:
    out = []
    for c in R["correlation"]:
        rows = [[Path(str(p["model"])).name, p["task"], p["method"], f3(p["tp_relative"]), f3(p["critical_ratio"]),
                 "yes" if p["censored"] else ""] for p in c["points"]]
        r = f"r = {c['r']:.3f}, p = {c['p']:.3g}" if c.get("r") is not None else "r undefined"
        out.append(f"<p>{esc(r)}, n = {c['n']} (γ = {c['gamma']}).</p>"
                   + table(["model", "task", "method", "TP/L", "critical ratio", "censored"], rows)
                   + _plots(c, ["correlation.png"]))
    return "".join(out)


def s_recovery(R, tmp) -> str:
    out = []
    for r in R["recovery"]:
        rows = [[f3(x["ratio"]), ", ".join(map(str, x["removed"])), f3(x["before"]["acc"]), f3(x["after"]["acc"]),
                 f3(x["before"]["dm_final"]), f3(x["after"]["dm_final"]), x["before"]["transition_point"],
                 x["after"]["transition_point"], f3(x["loss_before"]["eval"]), f3(x["loss_after"]["eval"])]
                for x in r["runs"]]
        d = r.get("dense", {})
        out.append(f"<h3>{_title(r)}</h3><p class=note>{esc(r['mode'])}, {r['steps']} steps, lr {r['lr']}, trained on "
                   f"{esc(r.get('train_task'))}/{esc(r.get('train_split'))} (n={r['n_train']}), evaluated on "
                   f"{esc(r.get('task'))}/{esc(r.get('split'))} (n={r['n_eval']}); dense acc {f3(d.get('acc'))}, "
                   f"DM {f3(d.get('dm_final'))}</p>"
                   + table(["ratio", "removed", "acc before", "acc after", "DM before", "DM after", "TP before",
                            "TP after", "eval loss before", "after"], rows) + _plots(r, ["recovery.png"]))
    return "".join(out)


def s_findings(R, tmp) -> str:
    items = "".join(f"<li><b class='{f.status.split()[0]}'>{esc(f.status)}</b>: {esc(f.claim)}<br>"
                    f"<span class=note>{esc(f.evidence)}</span></li>" for f in findings(R))
    return ("<p class=note>Every verdict is read off a 95% interval, shown with the numbers: <b class=holds>holds</b> "
            "= the interval excludes the null; <b class=does>does not hold</b> = it excludes the claim; "
            "<b class=not>not resolved at this n</b> = it contains both (more questions or seeds could decide it); "
            "not enough data = nothing to decide on.</p>" + f"<ol>{items}</ol>")


def build_report(run_dirs, out, title: str = "prunelens report") -> Path:
    """Write the report to `out`; returns its path. Correlation is computed on the fly when trajectories exist
    but no correlation.json was given."""
    R = collect(run_dirs)
    with tempfile.TemporaryDirectory() as tmp:
        if not R["correlation"] and R["trajectory"]:
            from ..analyses.run import run_correlation
            c = run_correlation(Path(tmp) / "corr", [r["_file"] for r in R["trajectory"]])
            R["correlation"].append({**c, "_dir": str(Path(tmp) / "corr")})
        body = []
        for key, name in SECTIONS:
            content = globals()[f"s_{key}"](R, tmp)
            body.append(f'<section id="{key}"><h2>{esc(name)}</h2>'
                        + (content or "<p class=note>no data for this section in the given runs</p>") + "</section>")
        skipped = "".join(f"<li>{esc(s)}</li>" for s in R["_skipped"])
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style>"
               f"</head><body><h1>{esc(title)}</h1><p class=note>runs: {esc(', '.join(map(str, run_dirs)))}</p>"
               + "".join(body) + (f"<h2>Skipped files</h2><ul>{skipped}</ul>" if skipped else "") + "</body></html>")
    return atomic_write_text(out, doc)
