"""How well does `plan` predict? Leave-one-(model, task)-out, against finished pruning trajectories (issue 13).

Points: one `plan` run (plan.json + outcomes.npz, ideally with --verify-curve) per (model, task), matched by model and
task to the trajectories of the same questions. Ground truth: each trajectory's critical ratio (method.md's rule,
`analyses.correlation.critical_ratio`; None = never fell that far: censored at its largest ratio).
Predictors of the critical ratio:
  plan            the additive prediction as the plan made it (c = 1)
  plan_loo        the same with c fitted on the *other* points' verify curves (least squares through the origin of
                  the measured change on the summed single-layer changes), then applied to the held-out point
  paper_rule      the paper's safe margin, (L - TP) / L, at the depth the plan recorded (`tp_source`: the mean-DM TP
                  where identified, else the prediction-rule decision depth, metrics.estimators.phase_depth; each
                  row says which, and on how many points the paper's own TP was used)
  last_25pct      "drop the last 25%" (arXiv 2411.15558): 0.25 for every point
One point per (model, task) is scored (the sample with the most questions; the others are listed under "excluded").
Points whose dense accuracy is not above chance (the Wilson interval of the plan's dense accuracy reaches the uniform
chance or the accuracy of always giving one option, metrics/chance.py) are left out of every score and listed
under "excluded": there "halfway to chance" lies inside the noise, so the truth itself would be noise.
Scores: mean absolute error over the points where prediction and truth are both uncensored (with a bootstrap CI
over points), Spearman's rank correlation (with a bootstrap CI over points), and the paired MAE difference of
plan(_loo) against each baseline (CI over points: "beats" only when it excludes 0). Recommended sets: the share
whose measured drop (--verify) stays within the plan's budget, with a Wilson interval, beside the same share for the
last 25% (round(0.25 L), halves up), ShortGPT's, Gromov's angular-distance block and random removal of as many
layers, read off their trajectories or off `prunelens controls` runs (controls.json) on the same questions. A plan
that recommends removing nothing is counted apart (`plan_empty`): it is within budget by construction. And paired,
on the points where both exist: the plan's measured drop minus the baseline's at the same number of layers, with a
bootstrap CI over points and a verdict from it (`sets_versus`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analyses import trajectories as T
from ..analyses.correlation import point_from_trajectory
from ..metrics.chance import judge, levels, wilson
from ..results import read_json
from .predict import critical_k, predicted_curve

PREDICTORS = ("plan", "plan_loo", "paper_rule", "last_25pct")
MIN_POINTS = 8     # a percentile bootstrap over fewer points is about [min, max]: no verdict from it


def _method_key(traj: dict) -> str:
    m = T.method(traj)
    return {"iterative+skip": "ip_skip"}.get(m, m)


def same_questions(plan: dict, traj: dict) -> bool:
    """A trajectory is ground truth for a plan only on the same model, task, questions and score: the samples digest
    when both record one (trajectories since fingerprints), else split, n, --sample/--seed and score."""
    if str(traj.get("task")) != str(plan.get("task")) or \
            Path(str(traj.get("model"))).name != Path(str(plan.get("model"))).name:
        return False
    a, b = (plan.get("fingerprint") or {}).get("samples"), (traj.get("fingerprint") or {}).get("samples")
    p = traj.get("params") or {}
    if a and b:
        return a == b and p.get("score", "raw") == plan.get("score_kind", "raw")
    cfg = plan.get("config") or {}
    return (traj.get("split") == plan.get("split") and traj.get("n_samples") == plan.get("n_samples")
            and traj.get("sample") == cfg.get("sample") and p.get("score", "raw") == plan.get("score_kind"))


def from_controls(c: dict) -> list[dict]:
    """A controls.json (final-depth one-shot ShortGPT, Gromov's angular block, tail, random per seed at the IP
    trajectory's layer counts) as
    trajectory-shaped dicts, one per method and random seed, so the baselines' sets are read the same way."""
    base = {k: c.get(k) for k in ("model", "model_path", "task", "split", "n_samples", "num_layers", "fingerprint",
                                  "chance")}
    score = (c.get("params") or {}).get("score", c.get("score_kind", "raw"))
    out = []
    for key, name in (("shortgpt_oneshot", "shortgpt"), ("angular_oneshot", "angular"), ("tail", "tail")):
        if key in c.get("methods", {}):
            out.append({**base, "params": {"method": name, "score": score}, "dense": c["dense"],
                        "steps": c["methods"][key]["steps"], "source": "controls"})
    rnd = c.get("methods", {}).get("random", {}).get("steps", [])
    for i in range(min((len(s.get("runs", [])) for s in rnd), default=0)):
        out.append({**base, "params": {"method": "random", "score": score}, "dense": c["dense"],
                    "steps": [{**s["runs"][i], "ratio": s["ratio"]} for s in rnd], "source": "controls"})
    return out


def load_points(plan_dirs, traj_roots) -> list[dict]:
    trajs = []
    for root in map(Path, traj_roots):
        files = [root] if root.is_file() else sorted(root.rglob("trajectory.json"))
        trajs += [(f, T.load_trajectory(f)) for f in files]
        if root.is_dir():
            trajs += [(f, t) for f in sorted(root.rglob("controls.json")) for t in from_controls(read_json(f))]
    points = []
    for d in map(Path, plan_dirs):
        for f in ([d / "plan.json"] if (d / "plan.json").is_file() else sorted(d.rglob("plan.json"))):
            p = read_json(f)
            z = np.load(f.parent / "outcomes.npz", allow_pickle=False)
            truth, from_ctl = {}, {}
            for tf, t in trajs:
                if same_questions(p, t):
                    pt = point_from_trajectory(t, p.get("gamma", 0.5), str(tf))
                    into = from_ctl if t.get("source") == "controls" else truth
                    into.setdefault(_method_key(t), []).append({**pt, "traj": t})
            # one source per method: a real trajectory of a method wins over the controls' final-depth sets (their
            # calibration prompts may differ), so no mean mixes the two
            for k, v in from_ctl.items():
                truth.setdefault(k, v)
            points.append({"plan": p, "dir": str(f.parent), "outcomes": {k: z[k] for k in z.files}, "truth": truth})
    return points


def fit_c(points) -> float | None:
    """Least-squares c (through the origin) of measured accuracy change on the summed single-layer changes, over
    every prefix k >= 1 of every given point with a verify curve. None without such points."""
    num = den = 0.0
    for p in points:
        o = p["outcomes"]
        if "actual" not in o:
            continue
        dense, single, actual = o["dense"], o["single"], o["actual"]
        order = p["plan"]["order"]
        pred = np.cumsum((single - dense[:, None])[:, order, 0].mean(0))[:-1]   # k = 1..L-1
        meas = actual[:, 1:, 0].mean(0) - dense[:, 0].mean()
        # only up to the measured critical k: past it accuracy sits at chance while the sum keeps falling, and
        # those k would set c instead of the region the prediction is for
        pl = p["plan"]
        kc = critical_k(np.concatenate([[dense[:, 0].mean()], actual[:, 1:, 0].mean(0)]), dense[:, 0].mean(),
                        pl["chance"], pl.get("gamma", 0.5))
        if kc is not None:
            pred, meas = pred[:kc], meas[:kc]
        num += float(pred @ meas)
        den += float(pred @ pred)
    return None if den == 0 else num / den


def _plan_ratio(p: dict, c: float) -> float | None:
    o, pl = p["outcomes"], p["plan"]
    curve = predicted_curve(o["dense"], o["single"], pl["order"], c=c, n_boot=1, chance=pl["chance"])
    k = critical_k(np.array(curve["acc"]), pl["dense"]["acc"], pl["chance"], pl.get("gamma", 0.5))
    return None if k is None else k / pl["num_layers"]


def _pair(p: dict) -> tuple[str, str]:
    return Path(str(p["plan"].get("model"))).name, str(p["plan"].get("task"))


def predictions(points) -> list[dict]:
    out = []
    for p in points:
        pl = p["plan"]
        # leave-one-(model, task)-out: a second sample of the same pair (Gemma ARC-E at n = 64 and 200) must not
        # calibrate the held-out point either
        c = fit_c([q for q in points if _pair(q) != _pair(p)])
        L, tp = pl["num_layers"], pl.get("tp")
        out.append({"plan": pl["critical"]["ratio"], "plan_loo": None if c is None else _plan_ratio(p, c),
                    "plan_loo_c": c, "paper_rule": None if tp is None else (L - tp) / L, "last_25pct": 0.25,
                    # which depth the rule read: the paper's TP only where identified, else a decision depth
                    "tp": tp, "tp_source": pl.get("tp_source")})
    return out


def _boot_ci(v: np.ndarray, n_boot=2000, seed=0) -> list[float] | None:
    if len(v) < 2:
        return None
    m = v[np.random.default_rng(seed).integers(0, len(v), (n_boot, len(v)))].mean(1)
    return [float(x) for x in np.percentile(m, [2.5, 97.5])]


def _spearman_ci(x, y, n_boot=2000, seed=0) -> list[float] | None:
    """Percentile CI of Spearman's rho over point resamples; resamples in which either side is constant (rho
    undefined) are left out. None below MIN_POINTS points: with fewer the resampled rho takes a handful of values."""
    from scipy import stats
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < MIN_POINTS:
        return None
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    rho = [stats.spearmanr(x[i], y[i]).statistic for i in idx if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0]
    rho = np.asarray([r for r in rho if np.isfinite(r)])
    return None if len(rho) < n_boot // 2 else [float(v) for v in np.percentile(rho, [2.5, 97.5])]


def _verdict(ci, n: int, better: str, worse: str) -> str:
    if ci is None:
        return f"not enough data (n = {n} < {MIN_POINTS} points)"
    return better if ci[1] < 0 else worse if ci[0] > 0 else "not resolved at this n"


def last_25pct_k(num_layers: int) -> int:
    """The number of blocks "drop the last 25%" removes: 0.25 L rounded, halves up (L = 18: 5; L = 30: 8)."""
    return int(np.floor(0.25 * num_layers + 0.5))


def _acc_at(traj: dict, k: int) -> float | None:
    st = [s for s in T.steps(traj) if s.get("removed") is not None and len(s["removed"]) == k]
    return T.final_acc(st[0]) if st else None


def at_chance(plan: dict) -> str | None:
    """Why a point cannot be scored (metrics.chance.judge: its dense accuracy's Wilson interval reaches the uniform
    chance or, when the plan records it, the accuracy of always giving the best option), else None."""
    if not plan.get("n_samples"):
        return "no questions"
    lv = levels(plan["chance"], plan.get("constant_chance"), plan.get("constant_option"))
    ok, why = judge(plan["dense"]["acc"], plan["n_samples"], lv)
    return None if ok is not False else why


def scored(points) -> tuple[list, list]:
    """(points scored, points left out with why): not at chance, then one point per (model, task), since two
    samples of one pair are not independent evidence (the bootstraps over points and the minimum of 8 count pairs).
    The sample with the most questions is scored. points: {"plan": plan.json dict, "dir": its folder}."""
    excluded = [{"model": _pair(p)[0], "task": p["plan"].get("task"), "dir": p["dir"], "why": why}
                for p in points if (why := at_chance(p["plan"]))]
    points = [p for p in points if not at_chance(p["plan"])]
    keep: dict = {}
    for p in sorted(points, key=lambda p: (-(p["plan"].get("n_samples") or 0), p["dir"])):
        keep.setdefault(_pair(p), p)
    excluded += [{"model": _pair(p)[0], "task": _pair(p)[1], "dir": p["dir"],
                  "why": f"another sample of this model and task is scored ({keep[_pair(p)]['dir']})"}
                 for p in points if keep[_pair(p)] is not p]
    return [p for p in points if keep[_pair(p)] is p], excluded


def evaluate(points, truth_method: str = "ip_skip") -> dict:
    from scipy import stats
    points, excluded = scored(points)
    preds = predictions(points)
    rows = []
    for p, pr in zip(points, preds):
        t = (p["truth"].get(truth_method) or [None])[0]
        rows.append({"model": Path(str(p["plan"].get("model"))).name, "task": p["plan"].get("task"),
                     "truth": None if t is None else t["critical_ratio"], "censored": t is None or t["censored"],
                     "running": bool(t and t.get("running")), **pr, "set_drops": set_drops(p)})
    scores = {}
    for name in PREDICTORS:
        both = [(r[name], r["truth"]) for r in rows if r[name] is not None and r["truth"] is not None]
        err = np.array([abs(a - b) for a, b in both])
        varied = len({a for a, _ in both}) > 1 and len({b for _, b in both}) > 1      # else rho is undefined
        rho = stats.spearmanr(*zip(*both)).statistic if len(both) >= 3 and varied else None
        rho = None if rho is None or not np.isfinite(rho) else float(rho)
        scores[name] = {"n": len(both), "mae": float(err.mean()) if len(err) else None, "mae_ci": _boot_ci(err),
                        "spearman": rho, "spearman_ci": None if rho is None else _spearman_ci(*zip(*both))}
    # which estimator's depth the paper's rule read on its scored points (the paper's TP only where identified)
    # ("estimator (verdict)" -> points; "given (--tp)": a depth passed by hand, source unknown)
    from collections import Counter
    scores["paper_rule"]["tp_sources"] = dict(sorted(Counter(
        str(r.get("tp_source")).split(" of ")[0].split(";")[0] for r in rows
        if r["paper_rule"] is not None and r["truth"] is not None).items()))
    # the same MAEs on the points where every predictor and the truth are defined: the per-predictor MAEs above
    # rest on different points (a plan predicting no collapse is dropped there)
    common = [r for r in rows if r["truth"] is not None and all(r[n] is not None for n in PREDICTORS)]
    scores["_common"] = {"n": len(common), **{n: float(np.mean([abs(r[n] - r["truth"]) for r in common]))
                                              if common else None for n in PREDICTORS}}
    versus = {}
    for mine in ("plan", "plan_loo"):
        for base in ("paper_rule", "last_25pct"):
            d = np.array([abs(r[mine] - r["truth"]) - abs(r[base] - r["truth"]) for r in rows
                          if None not in (r[mine], r[base], r["truth"])])
            ci = _boot_ci(d) if len(d) >= MIN_POINTS else None
            versus[f"{mine}_vs_{base}"] = {"n": len(d), "mae_diff": float(d.mean()) if len(d) else None, "ci": ci,
                                           "verdict": _verdict(ci, len(d), "beats", "worse")}
    return {"truth_method": truth_method, "points": rows, "excluded": excluded, "scores": scores, "versus": versus,
            "budget": budget_shares(points), "sets_versus": sets_versus(points)}


def _baseline_drops(p: dict, key: str, k: int) -> float | None:
    """A baseline's accuracy drop with k blocks removed on this point's questions, each trajectory against its own
    dense accuracy (random: the mean over seeds); None where it has no set of k blocks."""
    drops = [T.final_acc(T.dense(t["traj"])) - a for t in p["truth"].get(key, [])
             if (a := _acc_at(t["traj"], k)) is not None]
    return float(np.mean(drops)) if drops and k > 0 else None


def set_drops(p: dict) -> dict:
    """The measured accuracy drop of every recommended set of this point: the plan's (in-sample, --verify; held out,
    --verify-holdout) and each baseline's set on the same questions (ShortGPT, angular block and random of as many
    blocks as the plan, the last 25% of round(0.25 L)); None where not measured, and the plan's held-out drop None
    for an empty plan (nothing to check). k: the plan's block count."""
    pl = p["plan"]
    k, dense = pl["recommended"]["k"], pl["dense"]["acc"]
    h = pl.get("verify_holdout")
    return {"k": k, "plan": dense - pl["verify"]["acc"] if pl.get("verify") else None,
            "plan_holdout": h["dense_acc"] - h["acc"] if h and k >= 1 else None,
            "shortgpt": _baseline_drops(p, "shortgpt", k), "angular": _baseline_drops(p, "angular", k),
            "random": _baseline_drops(p, "random", k), "last_25pct_k": last_25pct_k(pl["num_layers"]),
            "last_25pct": _baseline_drops(p, "tail", last_25pct_k(pl["num_layers"]))}


def sets_versus(points) -> dict:
    """The plan's recommended set against each baseline's set of as many blocks, paired on the points where both
    were measured: mean over points of (plan's drop - baseline's drop), bootstrap CI over points; "plan better"
    only when the CI lies below 0. Plans recommending nothing are left out (nothing to compare). In-sample: the
    plan chose its set from single-layer effects on the very questions its drop is measured on, the baselines did
    not look at the answers, so the comparison leans towards the plan and every verdict says so."""
    drops = [set_drops(p) for p in points]
    out = {}
    for key in ("shortgpt", "angular", "random"):
        d = np.asarray([s["plan"] - s[key] for s in drops if s["k"] >= 1 and None not in (s["plan"], s[key])])
        ci = _boot_ci(d) if len(d) >= MIN_POINTS else None
        out[f"plan_vs_{key}"] = {"n": len(d), "drop_diff": float(d.mean()) if len(d) else None, "ci": ci,
                                 "verdict": _verdict(ci, len(d), "plan's set loses less (in-sample)",
                                                     "plan's set loses more (in-sample)")}
    return out


EPS = 1e-9     # a drop of exactly the budget (0.520 - 0.470 = 0.05000000000000004 in floats) is within it


def budget_shares(points) -> dict:
    """Share of recommended sets whose measured drop stays within the plan's budget, and the same for the
    baselines' sets of as many layers (read from their trajectories), each with a Wilson interval. `plan` is
    in-sample (--verify); `plan_holdout` the same sets on other questions (--verify-holdout), where measured."""
    tally = {k: [0, 0] for k in ("plan", "plan_holdout", "plan_empty", "last_25pct", "shortgpt", "angular", "random")}
    for p in points:
        if (budget := p["plan"].get("max_drop")) is None:
            continue
        s = set_drops(p)
        for name in ("plan", "plan_holdout", "last_25pct", "shortgpt", "angular", "random"):
            if s[name] is None:
                continue
            # an empty set is within budget by construction: counted apart
            key = "plan_empty" if name == "plan" and s["k"] < 1 else name
            tally[key][0] += s[name] <= budget + EPS
            tally[key][1] += 1
    return {k: {"within": int(a), "n": n, "share": None if n == 0 else a / n, "ci": wilson(int(a), n)}
            for k, (a, n) in tally.items()}
