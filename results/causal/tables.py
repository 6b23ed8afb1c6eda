"""Markdown tables of the finished readout runs, read from their readout.json (so the README's numbers are the JSON's).
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


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/causal")
    for p in sorted(root.glob("*/*/readout/readout.json")):
        print(table(p), end="\n\n")
