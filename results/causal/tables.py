"""Markdown tables of the finished readout runs, read from their readout.json, and a summary of every skip-effects run
from its skips.json (so the README's numbers are the JSON's).
Usage: python results/causal/tables.py [results/causal]"""
import json
import sys
from pathlib import Path

NAMES = {"logit_lens": "logit lens (full vocabulary)", "option_lens": "option lens (option trie, untrained)",
         "tuned_lens": "option-restricted tuned lens", "probe": "linear probe of the gold option (5-fold)",
         "probe_shuffled": "probe, shuffled labels (control)"}


def est(e: dict) -> str:
    lo, hi = e["ci"]
    tag = " **identified**" if e["verdict"] == "identified" else ""
    f = lambda x: "none" if x is None else str(x)    # noqa: E731
    return f"{f(e['point'])} [{f(lo)}, {f(hi)}]{tag}"


def table(path: Path) -> str:
    r = json.loads(path.read_text())
    L = r["num_layers"]
    marks = sorted({round(L * f) for f in (0.3, 0.5, 0.7, 0.85)})
    rows = [f"{r['model']}, {r['task']} (n_eval {r['n_eval']}, tuned lens fitted on {r['n_train']}: {r['train_source']}; "
            f"{r['seconds']} s)", "",
            f"| readout | final accuracy [95% CI] | decision depth (pred) | accuracy change-point | accuracy at depths "
            f"{' / '.join(map(str, marks))} |", "| --- | --- | --- | --- | --- |"]
    for k, name in NAMES.items():
        x = r["readouts"].get(k)
        if x is None:
            continue
        e = x["estimators"]
        acc = " / ".join(f"{x['acc'][d]:.2f}" for d in marks)
        rows.append(f"| {name} | {x['acc'][-1]:.3f} [{x['acc_ci'][-1][0]:.3f}, {x['acc_ci'][-1][1]:.3f}] | "
                    f"{est(e['decision_depth_pred'])} | {est(e['acc_changepoint'])} | {acc} |")
    rows += [""] + [f"- {a['question']}: **{a['status']}** ({a['evidence']})" for a in r["answers"]]
    return "\n".join(rows)


def skips(path: Path) -> str:
    """Which single skips cost accuracy (paired CI below 0), where they lie against the case's transition depth
    (TP.txt: Silent = layers before it), and how much every later layer's update changes after each skip."""
    import math
    import re
    r = json.loads(path.read_text())
    L, dec = r["num_layers"], r["decision"]
    m = re.search(r"tp=(\d+)", (path.parent.parent / "TP.txt").read_text()) if (path.parent.parent / "TP.txt").exists() else None
    tp = int(m.group(1)) if m else None
    ci = lambda a, b: f"[{a:+.3f}, {b:+.3f}]"          # noqa: E731
    cost = [d for d in dec if d["d_acc_ci"][1] < 0]
    gain = [d for d in dec if d["d_acc_ci"][0] > 0]
    later = {i: [x for x in row[i + 1:] if x is not None and not (isinstance(x, float) and math.isnan(x))]
             for i, row in zip(r["skipped"], r["rel_change"])}
    mean = {i: sum(v) / len(v) for i, v in later.items() if v}
    rows = [f"{r['model']}, {r['task']} skip effects (n {r['n_samples']}, {r['n_tokens']} prompt tokens, {r['seconds']} s; "
            f"dense accuracy {r['dense']['acc']:.3f}; transition depth {tp})", ""]
    rows.append(f"- Accuracy falls (CI below 0) when skipping {len(cost)} of {len(dec)} layers: "
                + (", ".join(f"{d['layer']} {d['d_acc']:+.3f} {ci(*d['d_acc_ci'])}" for d in cost) or "none")
                + (f"; rises when skipping {', '.join(str(d['layer']) for d in gain)}" if gain else "") + ".")
    rows.append(f"- DM CI excludes 0 for {sum(d['d_dm_ci'][1] < 0 or d['d_dm_ci'][0] > 0 for d in dec)} of {len(dec)} skips.")
    if tp is not None:
        sil = [d for d in cost if d["layer"] < tp]
        rows.append(f"- Against the transition depth {tp}: skipping costs accuracy for {len(sil)} of the {tp} Silent "
                    f"layers (0-{tp - 1}) and {len(cost) - len(sil)} of the {L - tp} Decisive ones ({tp}-{L - 1}).")
        for name, ids in (("Silent", range(0, tp)), ("Decisive", range(tp, L))):
            v = [mean[i] for i in ids if i in mean]
            if v:
                rows.append(f"- Mean relative change of the later layers' updates after a {name} skip: "
                            f"{sum(v) / len(v):.2f} (range {min(v):.2f}-{max(v):.2f} over {len(v)} layers).")
    first = [f"{i}: {mean[i]:.2f}" for i in sorted(mean)[:3]]
    rows.append(f"- After skipping the first layers: {', '.join(first)} (mean relative change of every later update).")
    return "\n".join(rows)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/causal")
    for p in sorted(root.glob("*/*/readout/readout.json")):
        print(table(p), end="\n\n")
    for p in sorted(root.glob("*/*/skips/skips.json")):
        print(skips(p), end="\n\n")
