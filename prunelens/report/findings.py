"""The paper's claims, checked one by one against the data of this run: holds / does not hold / not enough data,
always with the numbers that decided it. Each check takes the collected results and returns a Finding."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analyses import trajectories as T
from ..metrics import tp_ci_text

HOLDS, FAILS, NODATA = "holds", "does not hold", "not enough data"


@dataclass
class Finding:
    claim: str
    status: str
    evidence: str


def _name(r: dict) -> str:
    return f"{Path(str(r.get('model', '?'))).name}/{r.get('task', '?')}"


def _tally(oks: list[bool]) -> str:
    return f"{sum(oks)} of {len(oks)} comparisons hold: " if oks else ""


def _verdict(oks: list[bool]) -> str:
    return NODATA if not oks else HOLDS if all(oks) else FAILS


def _measure_key(t: dict) -> tuple:
    """Trajectories with equal keys measured the same thing (model, task, samples, format, score, margin)."""
    p = t.get("params", {})
    return (t.get("model"), t.get("task"), t.get("n_samples"), p.get("format"), p.get("score"), p.get("margin"))


def _dense_of_trajectories(R) -> list[tuple[str, dict, int]]:
    """One dense measurement per (model, task, samples, score) among the trajectories: (label, dense, L)."""
    out, seen = [], set()
    for t in R["trajectory"]:
        p, d, key = t.get("params", {}), T.dense(t), _measure_key(t)
        if d and key not in seen:
            seen.add(key)
            out.append((f"{_name(t)} (trajectory dense, {p.get('format')}, score {p.get('score')}, "
                        f"n={t.get('n_samples')})", d, T.num_layers(t)))
    return out


def transition_exists(R) -> Finding:
    ev, oks = [], []
    for a in R["analysis"]:
        tp, L = a.get("transition_point"), a.get("num_layers")
        oks.append(tp is not None and 0 < tp < L)
        ev.append(f"{_name(a)}: TP={tp}" + (f" ({tp / L:.2f} of depth)" if tp is not None else " (Silent throughout)"))
    for name, d, L in _dense_of_trajectories(R):
        tp = d.get("transition_point")
        oks.append(tp is not None and 0 < tp < L)
        ev.append(f"{name}: TP={tp}" + (f" ({tp / L:.2f} of depth)" if tp is not None else " (Silent throughout)"))
    return Finding("A sustained Transition Point splits the depth into a Silent and a Decisive phase "
                   "(0 < TP < L, DM > 0 from TP on).", _verdict(oks), "; ".join(ev) or "no analysis.json")


def transition_identified(R) -> Finding:
    """Not a claim of the paper but the referee's question: does n pin the TP down to interior depths?"""
    ev, oks = [], []
    for a in R["analysis"]:
        ci, L = a.get("tp_ci"), a.get("num_layers")
        if a.get("transition_point") is None or not ci:
            continue
        oks.append(ci[0] is not None and ci[1] is not None and 0 < ci[0] and ci[1] < L)
        ev.append(f"{_name(a)} (n={a.get('n_samples')}): TP={a['transition_point']}, 95% CI {tp_ci_text(ci)}, "
                  f"no TP in {a.get('tp_none_frac', 0):.0%} of resamples")
    return Finding("The Transition Point is identified at this sample size (its question-bootstrap 95% CI lies "
                   "inside 1..L-1; 'none' = resamples where the final DM is not above tau).", _verdict(oks),
                   "; ".join(ev) or "needs analysis.json with a TP and its CI (`prunelens transition --write`)")


def of_matches_labels(R) -> Finding:
    ev, oks = [], []
    for a in R["analysis"]:
        tp = a.get("transition_point")
        if tp is None or tp == 0:
            continue
        kl = [r["kl_to_labels"] for r in a["depths"]]
        s, d = float(np.mean(kl[:tp])), float(np.mean(kl[tp:]))
        oks.append(d < s)
        ev.append(f"{_name(a)}: mean KL(OF‖labels) Silent {s:.3f} vs Decisive {d:.3f}")
    return Finding("In the Decisive phase the predicted-option distribution approaches the label distribution "
                   "(lower KL(OF‖labels) than in the Silent phase).", _verdict(oks), "; ".join(ev) or
                   "needs analysis.json with a Transition Point")


def sudden_collapse(R) -> Finding:
    ev, oks = [], []
    for t in R["trajectory"]:
        st = [T.final_acc(s) for s in T.steps(t)]
        d = T.dense(t)
        accs = ([T.final_acc(d)] if d and T.steps(t) and T.steps(t)[0].get("removed") else []) + st
        if len(accs) < 3:
            continue
        drops = -np.diff(accs)
        total = max(accs) - min(accs)     # the range, so a rise before the fall cannot push the share past 100%
        share = float(drops.max() / total) if total > 0 else 0.0
        oks.append(total > 0.05 and share >= 0.5)
        ev.append(f"{_name(t)} [{T.method(t)}, {len(accs) - 1} steps{', still running' if t.get('status') == 'running' else ''}]: "
                  f"largest one-step drop {drops.max():.3f} = {share:.0%} of the accuracy range {total:.3f}")
    return Finding("Accuracy collapses suddenly along a pruning trajectory (one step carries ≥ 50% of the "
                   "accuracy range, range > 0.05).", _verdict(oks), "; ".join(ev) or "no trajectory.json with ≥ 2 steps")


def cka_conflict(R) -> Finding:
    ev, oks = [], []
    for c in R["cka"]:
        j = len(c["kept_depths"]) - 1
        h, d = c["signals"]["hidden"]["final_best"], c["signals"]["decision"]["final_best"]
        if h is None or d is None:
            continue
        oks.append(h >= j > d)              # the paper: hidden on/above the diagonal, decision below it
        acc = ""
        if c.get("pruned_eval"):
            acc = f", acc dense {c['dense_eval']['acc']:.3f} -> pruned {c['pruned_eval']['acc']:.3f}"
        emb = "".join(f"; with the embeddings admitted, {sig} matches depth {s['final_best_with_embeddings']}"
                      for sig, s in c["signals"].items()
                      if s.get("final_best_with_embeddings", s["final_best"]) != s["final_best"])
        ev.append(f"{_name(c)} ({len(c['removed'])}/{c['num_layers']} removed): the last pruned depth {j} best "
                  f"matches dense layer output {h} (hidden) and {d} (decision token){acc}{emb}")
    return Finding("After heavy pruning the last pruned layer's hidden states still align with a dense layer on or "
                   "above the identity diagonal, while its decision-token state falls below the diagonal (Figure 3).",
                   _verdict(oks), "; ".join(ev) or "no cka.json")


def noise_asymmetry(R) -> Finding:
    ev, oks = [], []
    for n in R["noise"]:
        for ps in n.get("phase_sensitivity", []):
            if ps["silent_drop"] is None or ps["decisive_drop"] is None:
                continue
            oks.append(ps["silent_drop"] > ps["decisive_drop"])
            ev.append(f"{_name(n)} α={ps['alpha']:g}: mean final-DM drop {ps['silent_drop']:.3f} (Silent, "
                      f"{ps['n_silent']} depths) vs {ps['decisive_drop']:.3f} (Decisive, {ps['n_decisive']})")
            if ps.get("silent_acc_drop") is not None and ps.get("decisive_acc_drop") is not None:
                oks.append(ps["silent_acc_drop"] > ps["decisive_acc_drop"])
                ev.append(f"accuracy drop {ps['silent_acc_drop']:.3f} vs {ps['decisive_acc_drop']:.3f}")
    return Finding("Noise in the Silent phase degrades the final DM and accuracy more than the same relative noise "
                   "in the Decisive phase.", _verdict(oks), _tally(oks) + "; ".join(ev)
                   or "no noise.json with both phases")


def ablation_asymmetry(R) -> Finding:
    ev, oks = [], []
    for a in R["ablation"]:
        tp, rows = a["tp"], a["rows"]
        dense = next(r for r in rows if not r["removed"])["avg_acc"]
        # layer l maps h_l -> h_{l+1}: layers <= TP-1 read Silent states, layers >= TP read Decisive ones.
        pre = [dense - r["avg_acc"] for r in rows if r["removed"] and max(r["removed"]) <= tp - 1]
        post = [dense - r["avg_acc"] for r in rows if r["removed"] and min(r["removed"]) >= tp]
        if not pre or not post:
            continue
        oks.append(np.mean(pre) > np.mean(post))
        ev.append(f"TP={tp}: mean average-accuracy drop removing layers ≤ TP-1 {np.mean(pre):.3f} "
                  f"({len(pre)} configs) vs ≥ TP {np.mean(post):.3f} ({len(post)})")
    return Finding("Removing layers up to the transition hurts more than removing layers after it (Table 1).",
                   _verdict(oks), "; ".join(ev) or "no ablation.json with configs on both sides")


def correlation_claim(R) -> Finding:
    cs = R["correlation"]
    if not cs and R["trajectory"]:         # no correlation.json given: compute it from the trajectories
        from ..analyses.correlation import correlate, point_from_trajectory
        cs = [correlate([point_from_trajectory(t) for t in R["trajectory"]])]
    if not cs:
        return Finding("TP/L correlates negatively and significantly with the critical pruning ratio (Figure 8).",
                       NODATA, "no correlation computed (needs trajectory.json files)")
    c = cs[-1]
    if c.get("r") is None:
        return Finding("TP/L correlates negatively and significantly with the critical pruning ratio (Figure 8).",
                       NODATA, f"n={c['n']} usable (model, task) pairs; {len(c.get('dropped', []))} dropped")
    ev = f"r={c['r']:.3f}, p={c['p']:.3g}, n={c['n']} (|r| > {c['min_significant_r']:.2f} needed for p<0.05)"
    if c["n"] < 5:
        return Finding("TP/L correlates negatively and significantly with the critical pruning ratio (Figure 8).",
                       NODATA, ev + "; fewer than 5 pairs cannot support or refute it")
    return Finding("TP/L correlates negatively and significantly with the critical pruning ratio (Figure 8).",
                   HOLDS if c["r"] < 0 and c["p"] < 0.05 else FAILS, ev)


def recovery_bounded(R) -> Finding:
    ev, oks = [], []
    for r in R["recovery"]:
        runs = sorted(r["runs"], key=lambda x: x["ratio"])
        if len(runs) < 2:
            continue
        gains = [x["after"]["dm_final"] - x["before"]["dm_final"] for x in runs]
        dense = r.get("dense", {}).get("acc")
        last = runs[-1]["after"]["acc"]
        improves = all(g > 0 for g in gains)
        bounded = dense is not None and last < dense
        oks.append(improves and bounded)
        ev.append(f"{_name(r)}: DM gain by ratio " + ", ".join(f"{x['ratio']:.2f}: {g:+.3f}" for x, g in
                                                                zip(runs, gains))
                  + f"; accuracy after tuning at ratio {runs[-1]['ratio']:.2f}: {last:.3f} vs dense {dense}")
    return Finding("Fine-tuning raises the DM at every ratio, but recovery is bounded: the most pruned model "
                   "stays below the dense accuracy.", _verdict(oks), "; ".join(ev) or "no recovery.json")


def _trajectory_groups(R) -> list[dict]:
    """Trajectories that measure the same thing (model, task, samples, format, score), by method label; random
    seeds pooled. Each group: {"name", "ip": traj|None, "shortgpt": traj|None, "random": [traj]}."""
    groups: dict[tuple, dict] = {}
    for t in R["trajectory"]:
        p = t.get("params", {})
        g = groups.setdefault(_measure_key(t), {"name": f"{_name(t)} (n={t.get('n_samples')})", "ip": None, "shortgpt": None,
                                    "random": []})
        m = p.get("method")
        if m == "iterative":
            g["ip"] = t
        elif m in ("shortgpt", "random"):
            g["random"].append(t) if m == "random" else g.__setitem__("shortgpt", t)
    return list(groups.values())


def _acc_by_count(t) -> dict[int, float]:
    return {len(s.get("removed", [])): T.final_acc(s) for s in T.steps(t) if s.get("removed")}


def beats_random(R) -> Finding:
    ev, oks = [], []
    for g in _trajectory_groups(R):
        if g["ip"] is None or not g["random"]:
            continue
        ip, rnd = _acc_by_count(g["ip"]), [_acc_by_count(t) for t in g["random"]]
        for k in sorted(ip):
            accs = [r[k] for r in rnd if k in r]
            if accs:
                oks.append(ip[k] >= float(np.mean(accs)))
                ev.append(f"{g['name']} {k} removed: {T.method(g['ip'])} {ip[k]:.3f} vs random "
                          f"{np.mean(accs):.3f} (seeds {min(accs):.3f}-{max(accs):.3f})")
    for c in R["controls"]:
        m = c["methods"]
        name = "ip" if "ip" in m else "shortgpt_oneshot"
        rnd = {round(s["ratio"], 4): s for s in m["random"]["steps"]}
        for s in m[name]["steps"]:
            r = rnd.get(round(s["ratio"], 4))
            if r is None:
                continue
            oks.append(s["acc"] >= r["acc"])
            ev.append(f"{_name(c)} ratio {s['ratio']:.2f}: {name} {s['acc']:.3f} vs random "
                      f"{r['acc']:.3f}±{r['acc_std']:.3f} ({len(r['seeds'])} seeds)")
    return Finding("BI-guided pruning keeps at least the accuracy of random pruning at equal layer count "
                   "(referee's control).", _verdict(oks), _tally(oks) + "; ".join(ev) or
                   "needs an IP trajectory beside random ones, or controls.json")


def ip_vs_oneshot(R) -> Finding:
    ev, oks = [], []
    for g in _trajectory_groups(R):
        if g["ip"] is None or g["shortgpt"] is None:
            continue
        ip, one = _acc_by_count(g["ip"]), _acc_by_count(g["shortgpt"])
        for k in sorted(set(ip) & set(one)):
            oks.append(ip[k] >= one[k])
            ev.append(f"{g['name']} {k} removed: {T.method(g['ip'])} {ip[k]:.3f} vs one-shot {one[k]:.3f}")
    for c in R["controls"]:
        m = c["methods"]
        if "ip" not in m:
            continue
        one = {round(s["ratio"], 4): s for s in m["shortgpt_oneshot"]["steps"]}
        for s in m["ip"]["steps"]:
            o = one.get(round(s["ratio"], 4))
            if o is not None:
                oks.append(s["acc"] >= o["acc"])
                ev.append(f"ratio {s['ratio']:.2f}: IP {s['acc']:.3f} vs one-shot {o['acc']:.3f}")
    return Finding("Iterative pruning (BI recomputed each step) is at least as good as one-shot ShortGPT at "
                   "equal ratio.", _verdict(oks), _tally(oks) + "; ".join(ev) or "needs an IP trajectory beside a shortgpt "
                   "trajectory or controls.json")


CHECKS = [transition_exists, transition_identified, of_matches_labels, sudden_collapse, cka_conflict, noise_asymmetry,
          ablation_asymmetry, correlation_claim, recovery_bounded, beats_random, ip_vs_oneshot]


def findings(R) -> list[Finding]:
    return [check(R) for check in CHECKS]
