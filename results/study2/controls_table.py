"""Markdown summary of every finished controls.json under results/study2 (so the README's numbers are the JSON's):
accuracy by method at about 10-50% of the layers, and the paired comparisons against IP+SKIP whose 95% CI excludes 0.
Usage: python results/study2/controls_table.py [results/study2]"""
import json
import sys
from pathlib import Path

ONE_SHOT = {"shortgpt_oneshot": "one-shot ShortGPT", "angular_oneshot": "angular block", "tail": "tail"}


def ci(x) -> str:
    return f"[{x[0]:.3f}, {x[1]:.3f}]"


def table(path: Path) -> str:
    c = json.loads(path.read_text())
    L, m = c["num_layers"], c["methods"]
    by = {key: {len(s["removed"]): s for s in m[key]["steps"]} for key in ("ip", *ONE_SHOT)}
    rnd = {s["n_removed"]: s for s in m["random"]["steps"]}
    counts = sorted(by["ip"])
    marks = sorted({min(counts, key=lambda k: abs(k - f * L)) for f in (0.1, 0.2, 0.3, 0.4, 0.5)})
    d = c["dense"]
    rows = [f"{c['model']}, {c['task']} (n = {c['n_samples']}, {c['seconds']:.0f} s): dense {d['acc']:.3f} "
            f"{ci(d['acc_ci'])}, uniform chance {c['chance']:.3f}", "",
            "| layers removed | IP+SKIP | " + " | ".join(ONE_SHOT.values()) + " | random (mean ± sd of 3) |",
            "| ---: | --- | " + " | ".join("---" for _ in ONE_SHOT) + " | --- |"]
    for k in marks:
        cells = [f"{by[key][k]['acc']:.3f} {ci(by[key][k]['acc_ci'])}" if k in by[key] else "" for key in by]
        r = rnd.get(k)
        rows.append(f"| {k} ({k / L:.0%}) | " + " | ".join(cells) + " | "
                    + (f"{r['acc']:.3f} ± {r['acc_std']:.3f}" if r else "") + " |")
    # every paired comparison against IP at the same layer count (random: each seed's run); a control that removed
    # IP's very set is the same model, not a comparison
    ip_set = {k: set(s["removed"]) for k, s in by["ip"].items()}
    n, same, out = 0, 0, []
    tally: dict = {}     # control -> [comparisons, CI below 0, CI above 0]

    def count(name, lo, hi):
        t = tally.setdefault(name, [0, 0, 0])
        t[0] += 1
        t[1] += hi < 0
        t[2] += lo > 0
    for key, name in ONE_SHOT.items():
        for s in m[key]["steps"]:
            p = s.get("vs_ip")
            if p is None or not s["removed"]:
                continue
            if set(s["removed"]) == ip_set.get(len(s["removed"])):
                same += 1
                continue
            n += 1
            lo, hi = p["d_acc_ci"]
            count(name, lo, hi)
            if lo > 0 or hi < 0:
                out.append(f"{name} at {len(s['removed'])}: {p['d_acc']:+.3f} {ci(p['d_acc_ci'])}")
    for s in m["random"]["steps"]:
        for i, r in enumerate(s["runs"]):
            p = r.get("vs_ip")
            if p is None:
                continue
            if set(r["removed"]) == ip_set.get(s["n_removed"]):
                same += 1
                continue
            n += 1
            lo, hi = p["d_acc_ci"]
            count("random", lo, hi)
            if lo > 0 or hi < 0:
                out.append(f"random seed {s['seeds'][i]} at {s['n_removed']}: {p['d_acc']:+.3f} {ci(p['d_acc_ci'])}")
    rows += ["", f"Paired against IP+SKIP (control - IP, same questions; {same} control sets equal to IP's left out): "
             f"{len(out)} of {n} intervals exclude 0"
             + (": " + "; ".join(out) if out else "."),
             "", "By control (comparisons; CI below 0: the control loses more than IP+SKIP; above 0: it loses less): "
             + "; ".join(f"{k} {a}, below {b}, above {c}" for k, (a, b, c) in tally.items())]
    return "\n".join(rows)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/study2")
    print("\n\n".join(table(p) for p in sorted(root.rglob("controls/controls.json"))))
