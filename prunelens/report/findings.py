"""The paper's claims, checked one by one against the data of this run, always with the intervals that decided it.
Each check takes the collected results and returns a Finding.

Every verdict is decided by an interval, never by a point estimate (`decide`): "holds" only when the interval of the
relevant effect excludes the null (lies entirely on the claim's side), "does not hold" only when it excludes the
claim, and "not resolved at this n" when it contains both; "not enough data" when nothing to decide on was given.
A claim made of several comparisons (every ratio, every alpha, both metrics) holds when all hold and does not hold
when one does not (`_combine`).

Where the JSONs hold the per-question data or a paired CI, that is used (Table 1's paired changes; KL(OF||labels)
resampled from samples.csv). Otherwise differences of two estimates measured on the same questions get the MOVER
interval (Zou & Donner 2008: L = d - sqrt((a - l_a)^2 + (u_b - b)^2), U likewise) from their two marginal CIs, which
assumes independence and so is conservative for the positive correlation of paired measurements; averages over
configurations of unknown dependence get interval arithmetic (the average of the bounds: right under perfect
correlation, conservative otherwise)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analyses import trajectories as T
from ..metrics import IDENTIFIED, identify, tp_ci_text
from ..metrics.estimators import NAMES

from ..metrics.verdict import FAILS, HOLDS, NODATA, UNRESOLVED, decide  # noqa: F401 - re-exported
_Z = 1.959963984540054                     # two-sided 95% normal quantile


@dataclass
class Finding:
    claim: str
    status: str
    evidence: str


def _combine(statuses: list[str]) -> str:
    """All hold -> holds; any does not hold -> does not hold; nothing given -> not enough data; else not resolved."""
    if not statuses:
        return NODATA
    if FAILS in statuses:
        return FAILS
    return HOLDS if all(x == HOLDS for x in statuses) else UNRESOLVED


def _tally(statuses: list[str]) -> str:
    if not statuses:
        return ""
    return (f"{statuses.count(HOLDS)} of {len(statuses)} comparisons hold, {statuses.count(FAILS)} do not, "
            f"{statuses.count(UNRESOLVED)} not resolved: ")


def _iv(lo, hi) -> str:
    return "[" + ", ".join("-inf" if x is None and i == 0 else "inf" if x is None else f"{x:+.3f}"
                           for i, x in enumerate((lo, hi))) + "]"


def mover(a: float, ci_a, b: float, ci_b) -> tuple[float, float, float]:
    """a - b with its MOVER 95% interval from the two marginal CIs (see the module docstring)."""
    d = a - b
    return (d, d - float(np.hypot(a - ci_a[0], ci_b[1] - b)), d + float(np.hypot(ci_a[1] - a, b - ci_b[0])))


def _name(r: dict) -> str:
    return f"{Path(str(r.get('model', '?'))).name}/{r.get('task', '?')}"


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


def _tp_interior(tp, ci, L) -> tuple[str, str]:
    """Does the TP lie inside 1..L-1? From its question-bootstrap CI (None bound = the "no TP" tail)."""
    if not ci or not L:
        return UNRESOLVED, f"TP={tp}, no CI (`prunelens transition --write` adds it)"
    lo, hi = ci
    txt = f"TP={tp}" + (f" ({tp / L:.2f} of depth)" if tp is not None else " (Silent throughout)") + \
        f", 95% CI {tp_ci_text(ci)}"
    if lo is not None and hi is not None and 1 <= lo and hi <= L - 1:
        return HOLDS, txt
    if (lo is None and hi is None) or (hi is not None and hi < 1) or (lo is not None and lo >= L):
        return FAILS, txt
    return UNRESOLVED, txt


def transition_exists(R) -> Finding:
    ev, st = [], []
    for a in R["analysis"]:
        v, txt = _tp_interior(a.get("transition_point"), a.get("tp_ci"), a.get("num_layers"))
        st.append(v)
        ev.append(f"{_name(a)} (n={a.get('n_samples')}): {txt} -> {v}")
    for name, d, L in _dense_of_trajectories(R):
        v, txt = _tp_interior(d.get("transition_point"), d.get("tp_ci"), L)
        st.append(v)
        ev.append(f"{name}: {txt} -> {v}")
    return Finding("A sustained Transition Point splits the depth into a Silent and a Decisive phase "
                   "(0 < TP < L, DM > 0 from TP on; holds when the TP's 95% CI lies inside 1..L-1, does not hold when "
                   "it lies outside, e.g. [none, none]).", _combine(st), "; ".join(ev) or "no analysis.json")


def transition_identified(R) -> Finding:
    """Not a claim of the paper but the referee's question: does n pin the TP down to interior depths? The claim is
    about the CI itself, so the CI decides it exactly (metrics.estimators.identify)."""
    ev, st = [], []
    for a in R["analysis"]:
        ci, L = a.get("tp_ci"), a.get("num_layers")
        if a.get("transition_point") is None or not ci:
            continue
        v, why = identify(ci, L)
        st.append(HOLDS if v == IDENTIFIED else FAILS)
        ev.append(f"{_name(a)} (n={a.get('n_samples')}): TP={a['transition_point']}, 95% CI {tp_ci_text(ci)}, "
                  f"no TP in {a.get('tp_none_frac', 0):.0%} of resamples: {v} ({why})")
    return Finding("The Transition Point is identified at this sample size (its question-bootstrap 95% CI lies "
                   "inside 1..L-1 and spans at most L/4 depths; 'none' = resamples where the final DM is not above "
                   "tau).", _combine(st),
                   "; ".join(ev) or "needs analysis.json with a TP and its CI (`prunelens transition --write`)")


def transition_where_identified(R) -> Finding:
    """Which transition estimators pin the transition down at this n (each verdict is its CI rule)."""
    ev, st = [], []
    for r, label in [(a, f"{_name(a)} (n={a.get('n_samples')})") for a in R["analysis"]] + \
            [(d, name) for name, d, _ in _dense_of_trajectories(R)]:
        est = r.get("estimators")
        if not est:
            continue
        ok = [k for k in NAMES if est.get(k, {}).get("verdict") == IDENTIFIED]
        st.append(HOLDS if ok else FAILS)
        ev.append(f"{label}: " + ", ".join(
            f"{NAMES[k]} {'none' if est[k]['point'] is None else est[k]['point']} {tp_ci_text(est[k]['ci'])} "
            f"{'identified' if k in ok else 'not identified'}" for k in NAMES if k in est))
    return Finding("Where the transition is identified: at least one estimator (mean-DM TP, decision depth by "
                   "prediction or by gold, accuracy change-point) has a 95% CI inside 1..L-1 spanning at most L/4 "
                   "depths.", _combine(st), "; ".join(ev) or "needs analysis.json or trajectory.json with "
                   "`estimators` (rerun analyze, or `prunelens transition --write`)")


def kl_phase_contrast(pred, gold, kmax: int, tp: int, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean KL(OF_l || labels) over the Silent depths (< tp) minus over the Decisive depths (>= tp), with a
    question-bootstrap 95% CI: OF and the label distribution are recomputed on each resample (the same index draw
    as every other bootstrap here); the phases stay those of the run's TP. pred [N, D], gold [N]."""
    from ..metrics.decision import kl_divergence
    from ..metrics.estimators import resample_weights
    p, g = np.asarray(pred), np.asarray(gold)
    n, d = p.shape
    onehot = (p[..., None] == np.arange(kmax)).reshape(n, d * kmax).astype(float)
    lab = (g[:, None] == np.arange(kmax)).astype(float)
    w = np.vstack([np.ones((1, n)), resample_weights(n, n_boot, seed)])
    of = (w @ onehot / n).reshape(-1, d, kmax)
    kl = kl_divergence(of, (w @ lab / n)[:, None, :])                    # [1 + B, D]
    diff = kl[:, :tp].mean(1) - kl[:, tp:].mean(1)
    lo, hi = np.percentile(diff[1:], [2.5, 97.5])
    return float(diff[0]), float(lo), float(hi)


def _pred_gold(a: dict):
    """(pred [N, D], gold [N]) from the run's samples.csv, or None."""
    import pandas as pd
    csv = Path(a.get("_dir", "")) / "samples.csv"
    if not csv.is_file():
        return None
    df = pd.read_csv(csv, usecols=["sample_id", "depth", "gold", "pred"])
    ids = df["sample_id"].unique()
    pred = np.full((len(ids), int(df["depth"].max()) + 1), -1)
    pred[pd.Index(ids).get_indexer(df["sample_id"]), df["depth"].to_numpy()] = df["pred"].to_numpy()
    return pred, df.drop_duplicates("sample_id")["gold"].to_numpy()


def of_matches_labels(R) -> Finding:
    ev, st = [], []
    for a in R["analysis"]:
        tp = a.get("transition_point")
        if tp is None or tp == 0:
            continue
        kl = [r["kl_to_labels"] for r in a["depths"]]
        s_, d_ = float(np.mean(kl[:tp])), float(np.mean(kl[tp:]))
        data = _pred_gold(a)
        if data is None:
            st.append(UNRESOLVED)
            ev.append(f"{_name(a)}: mean KL(OF‖labels) Silent {s_:.3f} vs Decisive {d_:.3f}, no samples.csv for an "
                      f"interval -> {UNRESOLVED}")
            continue
        kmax = len(a["depths"][0]["option_frequency"])
        diff, lo, hi = kl_phase_contrast(*data, kmax, tp, seed=a.get("config", {}).get("seed", 0) or 0)
        v = decide(lo, hi, ">")
        st.append(v)
        ev.append(f"{_name(a)}: mean KL(OF‖labels) Silent {s_:.3f} vs Decisive {d_:.3f}, difference {diff:+.3f} "
                  f"95% CI {_iv(lo, hi)} -> {v}")
    return Finding("In the Decisive phase the predicted-option distribution approaches the label distribution "
                   "(lower KL(OF‖labels) than in the Silent phase; question-bootstrap CI of the difference).",
                   _combine(st), "; ".join(ev) or "needs analysis.json with a Transition Point")


def _lin_interval(coef: dict, vals, cis) -> tuple[float, float, float]:
    """sum_j coef[j] * vals[j] with interval arithmetic on the marginal CIs (valid under any dependence between the
    steps, given each marginal interval)."""
    e = sum(c * vals[j] for j, c in coef.items())
    lo = sum(c * (cis[j][0] if c > 0 else cis[j][1]) for j, c in coef.items())
    hi = sum(c * (cis[j][1] if c > 0 else cis[j][0]) for j, c in coef.items())
    return e, lo, hi


def collapse_verdict(accs: list[float], cis: list) -> tuple[str, str]:
    """"One step carries >= 50% of the accuracy range, and the range exceeds 0.05", decided on intervals.

    With i_max, i_min the states of highest and lowest accuracy, the range is R = a[i_max] - a[i_min] and step k
    carries half of it when E_k = 2 (a[k] - a[k+1]) - R >= 0. Both are linear in the step accuracies, so their
    intervals follow from the steps' 95% CIs by interval arithmetic. Holds when, for the largest drop k, E_k's
    interval is >= 0 and R's is > 0.05; does not hold when R's interval is <= 0.05, or every step's E_k interval is
    < 0; otherwise not resolved.
    """
    imax, imin = int(np.argmax(accs)), int(np.argmin(accs))
    rng_ = _lin_interval({imax: 1.0, imin: -1.0} if imax != imin else {}, accs, cis)
    rng_ = (rng_[0], max(0.0, rng_[1]), rng_[2])                        # a range is never negative
    es = []
    for k in range(len(accs) - 1):
        coef: dict = {}
        for j, c in ((k, 2.0), (k + 1, -2.0), (imax, -1.0), (imin, 1.0)):
            coef[j] = coef.get(j, 0.0) + c
        es.append(_lin_interval({j: c for j, c in coef.items() if c}, accs, cis))
    k = int(np.argmax(-np.diff(accs)))
    txt = (f"largest one-step drop {accs[k] - accs[k + 1]:.3f} (step {k + 1}), range {rng_[0]:.3f} "
           f"{_iv(rng_[1], rng_[2])}, 2·drop − range {es[k][0]:+.3f} {_iv(es[k][1], es[k][2])}")
    if es[k][1] >= 0 and rng_[1] > 0.05:
        return HOLDS, txt
    if rng_[2] <= 0.05 or all(e[2] < 0 for e in es):
        return FAILS, txt
    return UNRESOLVED, txt


def sudden_collapse(R) -> Finding:
    ev, st = [], []
    for t in R["trajectory"]:
        st_ = T.steps(t)
        d = T.dense(t)
        states = ([d] if d and st_ and st_[0].get("removed") else []) + st_
        if len(states) < 3:
            continue
        accs = [T.final_acc(x) for x in states]
        cis = [x.get("acc_ci") for x in states]
        head = (f"{_name(t)} [{T.method(t)}, {len(accs) - 1} steps"
                f"{', still running' if t.get('status') == 'running' else ''}]: ")
        if any(not c for c in cis):
            drops = -np.diff(accs)
            st.append(UNRESOLVED)
            ev.append(head + f"largest one-step drop {drops.max():.3f}, steps without acc_ci: no interval -> "
                      f"{UNRESOLVED}")
            continue
        v, txt = collapse_verdict(accs, cis)
        st.append(v)
        ev.append(head + txt + f" -> {v}")
    return Finding("Accuracy collapses suddenly along a pruning trajectory (one step carries ≥ 50% of the "
                   "accuracy range, range > 0.05; decided on the steps' 95% CIs).", _combine(st),
                   "; ".join(ev) or "no trajectory.json with ≥ 2 steps")


def cka_conflict(R) -> Finding:
    """Decided on a CI of the best-matching dense layers when cka.json has one (signals[*]["final_best_ci"]);
    cka.json as written today holds point best matches only, so the verdict is "not resolved" with the numbers."""
    ev, st = [], []
    for c in R["cka"]:
        j = len(c["kept_depths"]) - 1
        sh, sd = c["signals"]["hidden"], c["signals"]["decision"]
        h, d = sh["final_best"], sd["final_best"]
        if h is None or d is None:
            continue
        hc, dc = sh.get("final_best_ci"), sd.get("final_best_ci")
        if hc and dc:                      # the paper: hidden on/above the diagonal, decision below it
            v = _combine([decide(hc[0], hc[1], ">=", j), decide(dc[0], dc[1], "<", j)])
            ci_txt = f" (95% CIs {list(hc)} and {list(dc)})"
        else:
            v, ci_txt = UNRESOLVED, " (no CI of the best matches in cka.json)"
        st.append(v)
        acc = ""
        if c.get("pruned_eval"):
            acc = f", acc dense {c['dense_eval']['acc']:.3f} -> pruned {c['pruned_eval']['acc']:.3f}"
        emb = "".join(f"; with the embeddings admitted, {sig} matches depth {s_['final_best_with_embeddings']}"
                      for sig, s_ in c["signals"].items()
                      if s_.get("final_best_with_embeddings", s_["final_best"]) != s_["final_best"])
        ev.append(f"{_name(c)} ({len(c['removed'])}/{c['num_layers']} removed): the last pruned depth {j} best "
                  f"matches dense layer output {h} (hidden) and {d} (decision token){ci_txt}{acc}{emb} -> {v}")
    return Finding("After heavy pruning the last pruned layer's hidden states still align with a dense layer on or "
                   "above the identity diagonal, while its decision-token state falls below the diagonal (Figure 3).",
                   _combine(st), "; ".join(ev) or "no cka.json")


def _welch(x, y) -> tuple[float, float, float] | None:
    """mean(x) - mean(y) with a Welch t 95% interval; None with fewer than 2 values on a side."""
    from scipy import stats
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or len(y) < 2:
        return None
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    d, se = float(x.mean() - y.mean()), float(np.sqrt(vx + vy))
    if se == 0:
        return d, d, d
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    t = float(stats.t.ppf(0.975, df))
    return d, d - t * se, d + t * se


def noise_asymmetry(R) -> Finding:
    """Per alpha and metric: the per-depth drops (clean - noisy, averaged over seeds) of the Silent depths against
    those of the Decisive depths, Welch t interval with the probed depths as the units (noise.json keeps no
    per-question results, so question sampling is not in the interval; with one probed depth in a phase the
    contrast is not resolved)."""
    ev, st = [], []
    for n in R["noise"]:
        tp = n.get("clean", {}).get("transition_point")
        if tp is None or "dm_mean" not in n:
            continue
        depths = list(n["depths"])
        for ai, a in enumerate(n["alphas"]):
            for label, clean, noisy in (("final-DM", "dm_final", "dm_mean"), ("accuracy", "acc", "acc_mean")):
                if n["clean"].get(clean) is None or noisy not in n:
                    continue
                drop = n["clean"][clean] - np.asarray(n[noisy], float)[ai]
                sil = [x for dd, x in zip(depths, drop) if dd < tp]
                dec = [x for dd, x in zip(depths, drop) if dd >= tp]
                if not sil or not dec:
                    continue
                w = _welch(sil, dec)
                if w is None:
                    v = UNRESOLVED
                    txt = f"{np.mean(sil) - np.mean(dec):+.3f}, one depth in a phase: no interval"
                else:
                    v = decide(w[1], w[2], ">")
                    txt = f"{w[0]:+.3f} 95% CI {_iv(w[1], w[2])}"
                st.append(v)
                ev.append(f"{_name(n)} α={a:g}: mean {label} drop Silent {np.mean(sil):.3f} ({len(sil)} depths) "
                          f"vs Decisive {np.mean(dec):.3f} ({len(dec)}), difference {txt} -> {v}")
    return Finding("Noise in the Silent phase degrades the final DM and accuracy more than the same relative noise "
                   "in the Decisive phase.", _combine(st), _tally(st) + "; ".join(ev)
                   or "no noise.json with both phases")


def _config_drop(r: dict, tasks) -> tuple[float, float, float] | None:
    """Average over tasks of the accuracy drop against dense (-d_acc), MOVER across the tasks' independent samples,
    from each task's paired bootstrap CI; None when a task lacks the paired CI."""
    cells = [r["tasks"][t] for t in tasks]
    if any("d_acc_ci" not in c for c in cells):
        return None
    k = len(cells)
    m = -float(np.mean([c["d_acc"] for c in cells]))
    lo = m - float(np.sqrt(sum((c["d_acc_ci"][1] - c["d_acc"]) ** 2 for c in cells))) / k
    hi = m + float(np.sqrt(sum((c["d_acc"] - c["d_acc_ci"][0]) ** 2 for c in cells))) / k
    return m, lo, hi


def ablation_asymmetry(R) -> Finding:
    """Removing layers <= TP-1 vs >= TP: each configuration's average accuracy drop has an interval from the paired
    (same questions as dense) bootstrap CIs; each side's mean drop gets interval arithmetic over its configurations;
    the difference Silent-side minus Decisive-side gets MOVER."""
    ev, st = [], []
    for a in R["ablation"]:
        tp, rows, tasks = a["tp"], a["rows"], a["tasks"]
        # layer l maps h_l -> h_{l+1}: layers <= TP-1 read Silent states, layers >= TP read Decisive ones.
        pre = [r for r in rows if r["removed"] and max(r["removed"]) <= tp - 1]
        post = [r for r in rows if r["removed"] and min(r["removed"]) >= tp]
        if not pre or not post:
            continue
        dp, dq = [_config_drop(r, tasks) for r in pre], [_config_drop(r, tasks) for r in post]
        if any(x is None for x in dp + dq):
            st.append(UNRESOLVED)
            ev.append(f"TP={tp}: configs without paired CIs (d_acc_ci): no interval -> {UNRESOLVED}")
            continue
        side = [tuple(float(np.mean([x[i] for x in xs])) for i in range(3)) for xs in (dp, dq)]
        d, lo, hi = mover(side[0][0], side[0][1:], side[1][0], side[1][1:])
        v = decide(lo, hi, ">")
        st.append(v)
        ev.append(f"TP={tp}: mean average-accuracy drop removing layers ≤ TP-1 {side[0][0]:.3f} "
                  f"{_iv(*side[0][1:])} ({len(pre)} configs) vs ≥ TP {side[1][0]:.3f} {_iv(*side[1][1:])} "
                  f"({len(post)}), difference {d:+.3f} {_iv(lo, hi)} -> {v}")
    return Finding("Removing layers up to the transition hurts more than removing layers after it (Table 1).",
                   _combine(st), "; ".join(ev) or "no ablation.json with configs on both sides")


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
    lo, hi = fisher_ci(c["r"], c["n"])
    v = decide(lo, hi, "<")
    return Finding("TP/L correlates negatively and significantly with the critical pruning ratio (Figure 8; "
                   "Fisher-z 95% CI of r).", v, ev + f"; r 95% CI {_iv(lo, hi)} -> {v}")


def fisher_ci(r: float, n: int) -> tuple[float, float]:
    """Fisher z 95% CI of a Pearson r from n pairs (n >= 4)."""
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    h = _Z / np.sqrt(n - 3)
    return float(np.tanh(z - h)), float(np.tanh(z + h))


def recovery_bounded(R) -> Finding:
    """Each DM gain (after - before, same evaluation questions) and the gap dense - most-pruned-after get MOVER
    intervals from the marginal CIs; the claim needs every gain > 0 and the gap > 0."""
    ev, st = [], []
    for r in R["recovery"]:
        runs = sorted(r["runs"], key=lambda x: x["ratio"])
        if len(runs) < 2:
            continue
        dense = r.get("dense", {})
        parts, txt = [], []
        for x in runs:
            b, a = x["before"], x["after"]
            if not b.get("dm_final_ci") or not a.get("dm_final_ci"):
                parts.append(UNRESOLVED)
                txt.append(f"{x['ratio']:.2f}: {a['dm_final'] - b['dm_final']:+.3f} (no CI)")
                continue
            g, lo, hi = mover(a["dm_final"], a["dm_final_ci"], b["dm_final"], b["dm_final_ci"])
            parts.append(decide(lo, hi, ">"))
            txt.append(f"{x['ratio']:.2f}: {g:+.3f} {_iv(lo, hi)}")
        last = runs[-1]["after"]
        if dense.get("acc_ci") and last.get("acc_ci"):
            gap, glo, ghi = mover(dense["acc"], dense["acc_ci"], last["acc"], last["acc_ci"])
            parts.append(decide(glo, ghi, ">"))
            gap_txt = f"dense {dense['acc']:.3f} − pruned-and-tuned {last['acc']:.3f} = {gap:+.3f} {_iv(glo, ghi)}"
        else:
            parts.append(UNRESOLVED)
            gap_txt = f"dense {dense.get('acc')} vs pruned-and-tuned {last.get('acc')} (no CI)"
        v = _combine(parts)
        st.append(v)
        ev.append(f"{_name(r)}: DM gain by ratio " + ", ".join(txt) + f"; at ratio {runs[-1]['ratio']:.2f} "
                  + gap_txt + f" -> {v}")
    return Finding("Fine-tuning raises the DM at every ratio, but recovery is bounded: the most pruned model "
                   "stays below the dense accuracy.", _combine(st), "; ".join(ev) or "no recovery.json")


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


def _acc_by_count(t) -> dict[int, tuple[float, list | None]]:
    """{layers removed: (accuracy, its 95% CI or None)} over a trajectory's pruned steps."""
    return {len(s.get("removed", [])): (T.final_acc(s), s.get("acc_ci")) for s in T.steps(t) if s.get("removed")}


def random_arm(vals: list) -> tuple[float, float, float] | None:
    """Mean accuracy of random pruning over seeds [(acc, ci)], with a 95% interval for its expectation over seeds:
    the seeds' mean CI half-widths (question sampling; the seeds share the questions, so averaging does not shrink
    it) combined in quadrature with the t interval of the seed spread. None with one seed or a missing CI."""
    from scipy import stats
    if len(vals) < 2 or any(not c for _, c in vals):
        return None
    a = np.array([v for v, _ in vals])
    m = float(a.mean())
    hs = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    q_lo = float(np.mean([v - c[0] for v, c in vals]))
    q_hi = float(np.mean([c[1] - v for v, c in vals]))
    return m, m - float(np.hypot(q_lo, hs)), m + float(np.hypot(q_hi, hs))


def _vs(a: float, a_ci, b: float, b_ci) -> tuple[str, str]:
    """'a >= b' on the MOVER interval of a - b (not resolved without both CIs)."""
    if not a_ci or b_ci is None:
        return UNRESOLVED, "no CI"
    d, lo, hi = mover(a, a_ci, b, b_ci)
    v = decide(lo, hi, ">=")
    return v, f"difference {d:+.3f} {_iv(lo, hi)} -> {v}"


def beats_random(R) -> Finding:
    ev, st = [], []
    for g in _trajectory_groups(R):
        if g["ip"] is None or not g["random"]:
            continue
        ip, rnd = _acc_by_count(g["ip"]), [_acc_by_count(t) for t in g["random"]]
        for k in sorted(ip):
            vals = [r[k] for r in rnd if k in r]
            if not vals:
                continue
            arm = random_arm(vals)
            accs = [v for v, _ in vals]
            v, txt = _vs(*ip[k], *(arm[0], arm[1:]) if arm else (float(np.mean(accs)), None))
            if arm is None:
                txt = "one seed or no CI: no interval for random -> " + UNRESOLVED
            st.append(v)
            ev.append(f"{g['name']} {k} removed: {T.method(g['ip'])} {ip[k][0]:.3f} vs random "
                      f"{np.mean(accs):.3f} (seeds {min(accs):.3f}-{max(accs):.3f}), {txt}")
    for c in R["controls"]:
        m = c["methods"]
        name = "ip" if "ip" in m else "shortgpt_oneshot"
        rnd = {round(s_["ratio"], 4): s_ for s_ in m["random"]["steps"]}
        for s_ in m[name]["steps"]:
            r = rnd.get(round(s_["ratio"], 4))
            if r is None:
                continue
            arm = random_arm([(x["acc"], x.get("acc_ci")) for x in r.get("runs", [])])
            v, txt = _vs(s_["acc"], s_.get("acc_ci"), *(arm[0], arm[1:]) if arm else (r["acc"], None))
            if arm is None:
                txt = "one seed or no CI: no interval for random -> " + UNRESOLVED
            st.append(v)
            ev.append(f"{_name(c)} ratio {s_['ratio']:.2f}: {name} {s_['acc']:.3f} vs random "
                      f"{r['acc']:.3f}±{r['acc_std']:.3f} ({len(r['seeds'])} seeds), {txt}")
    return Finding("BI-guided pruning keeps at least the accuracy of random pruning at equal layer count "
                   "(referee's control).", _combine(st), _tally(st) + "; ".join(ev) or
                   "needs an IP trajectory beside random ones, or controls.json")


def ip_vs_oneshot(R) -> Finding:
    ev, st = [], []
    for g in _trajectory_groups(R):
        if g["ip"] is None or g["shortgpt"] is None:
            continue
        ip, one = _acc_by_count(g["ip"]), _acc_by_count(g["shortgpt"])
        for k in sorted(set(ip) & set(one)):
            v, txt = _vs(*ip[k], *one[k])
            st.append(v)
            ev.append(f"{g['name']} {k} removed: {T.method(g['ip'])} {ip[k][0]:.3f} vs one-shot {one[k][0]:.3f}, "
                      f"{txt}")
    for c in R["controls"]:
        m = c["methods"]
        if "ip" not in m:
            continue
        one = {round(s_["ratio"], 4): s_ for s_ in m["shortgpt_oneshot"]["steps"]}
        for s_ in m["ip"]["steps"]:
            o = one.get(round(s_["ratio"], 4))
            if o is not None and o.get("vs_ip"):           # paired on the same questions: one-shot - IP
                p = o["vs_ip"]
                v = decide(*p["d_acc_ci"], "<=")
                txt = f"paired difference (one-shot - IP) {p['d_acc']:+.3f} {_iv(*p['d_acc_ci'])} -> {v}"
            elif o is not None:
                v, txt = _vs(s_["acc"], s_.get("acc_ci"), o["acc"], o.get("acc_ci"))
            if o is not None:
                st.append(v)
                ev.append(f"ratio {s_['ratio']:.2f}: IP {s_['acc']:.3f} vs one-shot {o['acc']:.3f}, {txt}")
    return Finding("Iterative pruning (BI recomputed each step) is at least as good as one-shot ShortGPT at "
                   "equal ratio.", _combine(st), _tally(st) + "; ".join(ev) or "needs an IP trajectory beside a "
                   "shortgpt trajectory or controls.json")


def _referee(claim: str, kind: str, key: str, question: str):
    """A check of one of the referee's questions (issue 12) over every restore / readout case: each case's answer
    (already decided by its interval in restore.json / readout.json) is one comparison; cases without data are left
    out; combined as every other claim (`_combine`)."""
    def check(R) -> Finding:
        st, ev = [], []
        for r in R.get(kind, []):
            a = next((a for a in r.get("answers", []) if a.get("key") == key or a.get("question") == question), None)
            if a is None or a["status"] == NODATA:
                continue
            st.append(a["status"])
            ev.append(f"{_name(r)}: {a['status']} ({a['evidence']})")
        return Finding(claim, _combine(st), _tally(st) + "; ".join(ev) or f"needs {kind} runs with this answer")
    check.__name__ = f"referee_{key}"
    return check


# the referee's questions (issue 12): asked only of reports that hold restore or readout runs
REFEREE_CHECKS = [
    _referee("Restoring the Silent-Phase states of a pruned model brings back at least half of the lost DM.",
             "restore", "silent", "restoring the Silent-Phase states brings the decision back"),
    _referee("Removing the Silent layers of the critical removal set costs more accuracy than removing its Decisive "
             "layers.", "restore", "phase",
             "removing the Silent layers of the set costs more accuracy than removing its Decisive layers"),
    _referee("Magnitude alone explains the pruning loss (rescaling the pruned residual to the dense norms brings back "
             "at least half of the lost DM; LinearPatch's account).", "restore", "magnitude",
             "magnitude alone (dense norms) explains the loss"),
    _referee("Another question's dense state restores nothing (control).", "restore", "control",
             "another question's state restores nothing (control)"),
    _referee("The dataset-mean dense state restores nothing (control).", "restore", "mean_control",
             "the dataset-mean state restores nothing (control)"),
    _referee("The gold option is linearly decodable before the logit lens's transition (probe above its "
             "shuffled-label control).", "readout", "probe_early",
             "the gold option is linearly decodable before the logit lens's transition (probe above its control)"),
    _referee("The tuned lens locates the transition earlier than the logit lens.", "readout", "tuned_earlier",
             "the tuned lens locates the transition earlier than the logit lens"),
]


CHECKS = [transition_exists, transition_identified, transition_where_identified, of_matches_labels, sudden_collapse,
          cka_conflict, noise_asymmetry, ablation_asymmetry, correlation_claim, recovery_bounded, beats_random,
          ip_vs_oneshot]


def _key(r: dict) -> tuple:
    """The questions a result was measured on, and how they were asked: model, task, number, split, format (a model
    at chance in the letter format may well decide the same questions in the cloze format)."""
    n = r.get("n_samples")                               # per-task dicts (ablation over tasks) never match one run
    # a readout trained on seeded halves of its evaluation split reads the other half of a 2N sample: other
    # questions than the N-question sample every other result of that task uses
    half = "evaluation half" if ", seeded" in str(r.get("train_source", "")) else None
    return (Path(str(r.get("model"))).name, str(r.get("task")), n if isinstance(n, int) else str(n),
            str(r.get("split")), r.get("format") or (r.get("params") or {}).get("format"), half)


def at_chance(R) -> list[tuple[str, str, dict]]:
    """(kind, why, result) of each decision-lens run, pruning trajectory and causal case whose dense accuracy is not
    above chance
    (metrics.chance.judge: the uniform chance and the accuracy of always giving one option). A model that decides
    nothing on a task says nothing about where its decision forms or how pruning destroys it, so the claims leave
    out every result on those questions (`_above_chance_only`) instead of counting them for or against the paper.
    A run whose levels cannot be known (an old file without gold answers) is kept. build_report computes this once
    into R["_at_chance"]; every later call reads it from there."""
    if "_at_chance" in R:
        return R["_at_chance"]
    from ..analyses.correlation import point_from_trajectory
    from ..analyze import chance_of_run
    from ..metrics.chance import judge
    out = []
    for a in R.get("analysis", []):
        if a.get("chance_levels") and a.get("n_samples"):
            ok, why = judge(a["acc"], a["n_samples"], a["chance_levels"])
        elif a.get("_dir") and (Path(a["_dir"]) / "samples.csv").is_file():
            try:
                ok, why = chance_of_run(a["_dir"])
            except (KeyError, ValueError):          # no gold column: the levels cannot be known
                ok = None
        else:
            ok = None
        if ok is False:
            out.append(("analysis", why, a))
    for t in R.get("trajectory", []):
        pt = point_from_trajectory(t)
        if pt.get("at_chance"):
            out.append(("trajectory", pt["at_chance_why"], t))
    # causal cases carry their own levels (from 2026-12-03; results/backfill_chance.py for older files): the dense
    # model's accuracy on the case's questions
    for kind in ("restore", "readout", "skips"):
        for r in R.get(kind, []):
            acc = dense_acc(kind, r)
            if r.get("chance_levels") and r.get("n_samples") and acc is not None:
                ok, why = judge(acc, r["n_samples"], r["chance_levels"])
                if ok is False:
                    out.append((kind, why, r))
    return out


def dense_acc(kind: str, r: dict) -> float | None:
    """The dense model's final accuracy of a restore / readout / skips result (None when it records none)."""
    if kind == "readout":
        acc = ((r.get("readouts") or {}).get("logit_lens") or {}).get("acc") or []
        return acc[-1] if acc else None
    return (r.get("dense") or {}).get("acc")


def _above_chance_only(R) -> dict:
    """R without every result (any kind) on the questions of a run or trajectory at chance, e.g. all random seeds
    and controls of an at-chance trajectory; `_left_out` lists what decided it."""
    gone = at_chance(R)
    keys = {_key(r) for _, _, r in gone}
    out = {k: (v if k.startswith("_") else [r for r in v if _key(r) not in keys]) for k, v in R.items()}
    out["_left_out"] = [{"kind": k, "model": _key(r)[0], "task": r.get("task"), "n": r.get("n_samples"),
                         "dir": r.get("_dir"), "why": why} for k, why, r in gone]
    return out


def findings(R) -> list[Finding]:
    R = R if "_left_out" in R else _above_chance_only(R)
    extra = REFEREE_CHECKS if R.get("restore") or R.get("readout") else []
    return [check(R) for check in CHECKS + extra]


# ------------------------------------------------------------------------------------------- per model, and jointly
DIFFERS = "differs by model"      # holds on one family and does not hold on another: a finding in itself


def by_model(R) -> dict[str, dict]:
    """R split by each result's `model`. Pooled results that name no model (the correlation over (model, task)
    points) are left out of every part: they are judged jointly only."""
    models = sorted({r["model"] for k, v in R.items() if not k.startswith("_") for r in v if r.get("model")})
    return {m: {k: (v if k.startswith("_") else [r for r in v if r.get("model") == m]) for k, v in R.items()}
            for m in models}


def joint_verdict(per_model: dict[str, str], pooled: str = NODATA) -> tuple[str, str]:
    """(status, note) of one claim across models. Holds / does not hold only when it does on every model with data
    (at least two); "differs by model" when it holds on one and does not hold on another; not resolved otherwise.
    A claim no single model can decide (pooled data only, e.g. the correlation over points) takes the pooled
    verdict; one measured on one model only has no joint verdict."""
    have = {m: s for m, s in per_model.items() if s != NODATA}
    missing = [m for m in per_model if m not in have]
    tail = f"; no data on {', '.join(missing)}" if missing else ""
    if not have:
        return (pooled, "pooled over models (no per-model data)") if pooled != NODATA else (NODATA, "no data")
    if len(have) < 2:
        m, s = next(iter(have.items()))
        return NODATA, f"only {m} has data ({s}){tail}"
    vals = set(have.values())
    st = (HOLDS if vals == {HOLDS} else FAILS if vals == {FAILS} else DIFFERS if {HOLDS, FAILS} <= vals
          else UNRESOLVED)
    return st, ", ".join(f"{m}: {s}" for m, s in have.items()) + tail


def claim_table(R) -> dict:
    """Every claim on each model and jointly: {"models": [...], "rows": [{"claim", "per_model": {model: {"status",
    "evidence"}}, "joint", "joint_note", "pooled": {"status", "evidence"}}]} (JSON-ready, the report's
    findings.json)."""
    R = _above_chance_only(R)
    parts = by_model(R)
    pooled = findings(R)
    per = {m: findings(sub) for m, sub in parts.items()}
    rows = []
    for i, f in enumerate(pooled):
        pm = {m: {"status": fs[i].status, "evidence": fs[i].evidence} for m, fs in per.items()}
        st, note = joint_verdict({m: x["status"] for m, x in pm.items()}, f.status)
        rows.append({"claim": f.claim, "per_model": pm, "joint": st, "joint_note": note,
                     "pooled": {"status": f.status, "evidence": f.evidence}})
    return {"models": list(parts), "rows": rows, "left_out": R["_left_out"]}


def claim_table_md(t: dict) -> str:
    """The claim table as Markdown (one row per claim: each model's verdict, the joint verdict)."""
    head = "| claim | " + " | ".join(t["models"]) + " | joint |\n| --- |" + " --- |" * (len(t["models"]) + 1) + "\n"
    gone = "".join(f"- Left out as at chance, with every result on the same questions: {x['kind']} {x['model']}/"
                   f"{x['task']} (n = {x['n']}, {x['dir']}): {x['why']}.\n" for x in t.get("left_out", []))
    gone = "\n" + gone if gone else ""
    return head + "".join("| " + r["claim"].replace("|", "/") + " | "
                          + " | ".join(r["per_model"][m]["status"] for m in t["models"]) + f" | **{r['joint']}** |\n"
                          for r in t["rows"]) + gone
