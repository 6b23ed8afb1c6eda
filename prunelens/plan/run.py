"""Measure what the plan needs from the dense model, predict, explain, and optionally verify and export."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analyses.ablation import final_outcome as _outcome, paired
from ..engine.prefix import DensePrefix
from ..engine.score import score
from ..journal import NoJournal
from ..metrics.chance import chance_levels
from ..metrics.estimators import IDENTIFIED, NOT_IDENTIFIED
from ..model.surgery import keep_from_remove, pruned_view
from .predict import critical_interval, critical_k, predicted_curve, recommend, removal_order


def _score_without(lm, samples, fmt, removed, prefix: DensePrefix, score_kind, margin, batch_size):
    L = lm.anatomy.num_layers
    with pruned_view(lm, keep_from_remove(removed, L)):
        kw = {"resume": r} if (r := prefix.resume(removed, L)) is not None else {}
        sc = score(lm, samples, fmt, depths=[L - len(removed)], batch_size=batch_size, progress=False, **kw)
    return _outcome(sc, score_kind, margin)


@torch.no_grad()
def single_removals(lm, samples, fmt, *, score_kind="raw", margin="logit", batch_size=16, progress=True,
                    prefix: DensePrefix | None = None, journal=None):
    """(dense [N, 2], single [N, L, 2]): per-question (correct, DM) of the dense model and of the model without each
    single layer, final depth only. Cloze passes start at the removed layer from the stored dense residual
    (`DensePrefix`: the same numbers, about half the forward cost). journal (journal.py): removals already measured
    by a killed run are read from it."""
    L = lm.anatomy.num_layers
    prefix = prefix or DensePrefix(fmt)
    without = _without(lm, samples, fmt, prefix, score_kind, margin, batch_size, journal)
    kw = {"resume": r} if (r := prefix.saver(L)) is not None else {}
    dense = _outcome(score(lm, samples, fmt, depths=[L], batch_size=batch_size, progress=False, **kw),
                     score_kind, margin)
    single = np.zeros((len(samples), L, 2))
    for i in tqdm(range(L), desc="plan: single-layer removals", disable=not progress):
        single[:, i] = without([i])
    return dense, single


def _without(lm, samples, fmt, prefix, score_kind, margin, batch_size, journal=None):
    """removed -> [N, 2] outcomes of the model without `removed`, through the journal (a set measured once)."""
    journal = journal or NoJournal()

    def f(removed):
        r = sorted(int(i) for i in removed)
        return np.asarray(journal(("without", r), lambda: _score_without(lm, samples, fmt, r, prefix, score_kind,
                                                                         margin, batch_size)), dtype=float)
    return f


def _phase(i: int, tp) -> str | None:
    # layer i maps depth i to i+1; it belongs to the phase of its input state (as ablation.py and restore label
    # them): Silent while i < tp, so layer tp-1, which writes the first Decisive state, is still Silent
    return None if tp is None else ("decisive" if i >= tp else "silent")


def make_plan(dense, single, *, chance: float, tp=None, tp_source=None, tp_verdict=None, max_drop=0.05, ratio=None, c=1.0,
              gamma=0.5, n_boot=1000, seed=0) -> dict:
    """The plan from the measured outcomes (pure: the tests and the leave-one-out evaluation call it directly)."""
    N, L, _ = single.shape
    effects = [{"layer": i, **paired(dense, single[:, i], n_boot, seed), "phase": _phase(i, tp)} for i in range(L)]
    d_dm = np.array([e["d_dm"] for e in effects])
    d_acc = np.array([e["d_acc"] for e in effects])
    order = removal_order(d_dm, d_acc)
    curve = predicted_curve(dense, single, order, c=c, n_boot=n_boot, seed=seed, chance=chance)
    dacc = float(dense[:, 0].mean())
    kc = critical_k(np.array(curve["acc"]), dacc, chance, gamma)
    kci = critical_interval(curve.pop("boot_acc"), curve.pop("boot_dense"), chance, gamma)
    k_rec = recommend(curve, max_drop) if ratio is None else min(L - 1, int(np.ceil(ratio * L - 1e-9)))
    k_safe = recommend(curve, max_drop, safe=True) if ratio is None else None
    removed = sorted(order[:k_rec])
    plan = {"num_layers": L, "n_samples": N, "chance": chance, "gamma": gamma, "additivity_c": c, "n_boot": n_boot,
            "seed": seed,
            "dense": {"acc": dacc, "dm": float(dense[:, 1].mean())}, "tp": tp, "tp_source": tp_source,
            "tp_verdict": tp_verdict,
            "single_layer_effects": effects, "order": order, "curve": curve,
            "critical": {"k": kc, "ratio": None if kc is None else kc / L, "k_ci": kci,
                         "ratio_ci": [None if x is None else x / L for x in kci],
                         "censored": kc is None},
            "max_drop": max_drop if ratio is None else None, "ratio_asked": ratio,
            "recommended": {"k": k_rec, "ratio": k_rec / L, "removed": removed,
                            "predicted_acc": curve["acc"][k_rec], "predicted_acc_ci": curve["acc_ci"][k_rec],
                            "predicted_d_acc": curve["d_acc"][k_rec], "predicted_d_acc_ci": curve["d_acc_ci"][k_rec]},
            "safe": None if k_safe is None else {"k": k_safe, "ratio": k_safe / L, "removed": sorted(order[:k_safe]),
                                                 "predicted_d_acc_ci": curve["d_acc_ci"][k_safe]}}
    plan["explanation"] = explain(plan)
    return plan


def explain(plan: dict) -> list[str]:
    """Which phase each recommended layer lies in and what removing it alone did; why the first layers kept stay."""
    eff = {e["layer"]: e for e in plan["single_layer_effects"]}
    rec = plan["recommended"]
    f = lambda e: (f"alone: accuracy {e['d_acc']:+.3f} [{e['d_acc_ci'][0]:+.3f}, {e['d_acc_ci'][1]:+.3f}], DM "   # noqa: E731
                   f"{e['d_dm']:+.3f} [{e['d_dm_ci'][0]:+.3f}, {e['d_dm_ci'][1]:+.3f}]")
    ph = lambda e: f" ({e['phase']} phase)" if e["phase"] else ""                                                # noqa: E731
    out = [f"remove layer {i}{ph(eff[i])}: {f(eff[i])}" for i in rec["removed"]]
    kept_next = [i for i in plan["order"] if i not in rec["removed"]][:3]
    out += [f"keep layer {i}{ph(eff[i])}: next in line, {f(eff[i])}" for i in kept_next]
    worst = sorted(eff.values(), key=lambda e: e["d_dm"])[:3]
    out += [f"keep layer {e['layer']}{ph(e)}: among the most harmful to remove, {f(e)}" for e in worst]
    return out


def run_plan(out, *, model="gemma-3-270m", task="arc_easy", fmt="cloze", max_drop=0.05, ratio=None, tp=None, tp_from=None,
             verify=False, verify_curve=False, verify_holdout=None, export=None, lm=None, task_kw=None, batch_size=16, score_kind="raw", margin="logit",
             n_boot=1000, seed=0, progress=True, log=print) -> dict:
    from ..analyses.run import _finish, _fits, _lm, _meta, _task
    from ..analyze import measure
    from .figures import plan_figure
    t0 = time.time()
    t = _task(task, **(task_kw or {}))
    held = None
    if verify_holdout:             # drawn before the model loads: a split too small fails here
        from .holdout import holdout_samples
        held = holdout_samples(task_kw, [s.id for s in t.samples], verify_holdout, seed, task)
    lm = _lm(model, lm)
    _fits(lm, fmt, t)
    if held is not None:
        from ..tasks.limits import check_lengths
        check_lengths(lm, held, fmt, what=f"{t.name} (--verify-holdout questions)")
    L = lm.anatomy.num_layers
    levels = chance_levels([s.gold for s in t.samples], [s.n_options for s in t.samples])
    chance = levels["uniform"]
    from ..metrics.estimators import phase_depth
    tp_source, est, tp_verdict = ("given (--tp)" if tp is not None else None), None, None
    if tp_from is not None:           # a finished analyze run's estimators (no model pass)
        from ..analyze import transition_from_run
        from ..results import read_json
        run = read_json(Path(tp_from) / "analysis.json")
        if run.get("num_layers") not in (None, L) or run.get("task") not in (None, t.name):
            raise ValueError(f"--tp-from {tp_from}: a run of {run.get('task')} with {run.get('num_layers')} layers; "
                             f"this plan is {t.name} with {L}")
        est = run.get("estimators") or transition_from_run(tp_from).get("estimators")
        pd_ = phase_depth(est)
        tp, tp_source = (None, f"none in {tp_from}") if pd_ is None else (pd_["depth"], f"{pd_['source']} of {tp_from}")
        tp_verdict = None if pd_ is None else pd_["verdict"]
    elif tp is None:   # the dense decision lens: where the Silent / Decisive phases lie (labels only)
        log("plan: dense decision lens, every depth ...")
        m = measure(lm, t.samples, fmt, score_kind=score_kind, margin=margin, n_boot=n_boot, seed=seed,
                    batch_size=batch_size, progress=progress)
        est = m.summary.get("estimators") or {}
        pd_ = phase_depth(est)
        if pd_ is not None:
            tp, tp_source, tp_verdict = pd_["depth"], pd_["source"], pd_["verdict"]
    from ..journal import for_run
    j = for_run(out, "plan", lm, t.samples, fmt=fmt, score=score_kind, margin=margin, batch_size=batch_size)
    log(f"plan: {L} single-layer removals ..." + (f" (resuming: {j.resumed} pass(es) done)" if j.resumed else ""))
    prefix = DensePrefix(fmt)
    dense, single = single_removals(lm, t.samples, fmt, score_kind=score_kind, margin=margin, batch_size=batch_size,
                                    progress=progress, prefix=prefix, journal=j)
    without = _without(lm, t.samples, fmt, prefix, score_kind, margin, batch_size, j)
    from ..fingerprint import samples_digest
    res = {**_meta(lm, t, fmt, score_kind=score_kind, margin=margin,
                   config={k: v for k, v in (task_kw or {}).items()
                           if k in ("sample", "seed", "limit", "letters", "permute")},
                   fingerprint={"samples": samples_digest(t.samples)}),
           **make_plan(dense, single, chance=chance, tp=tp, tp_source=tp_source, tp_verdict=tp_verdict, max_drop=max_drop, ratio=ratio,
                       n_boot=n_boot, seed=seed),
           # the accuracy of always giving the best option position: a dense model not above it decides nothing
           "constant_chance": levels["constant"], "constant_option": levels["constant_option"]}
    if est:
        res["estimators"] = est            # every estimator of the dense run the phase labels were read from
    if verify:
        rem = res["recommended"]["removed"]
        log(f"plan: verifying the recommended set {rem} ...")
        got = without(rem) if rem else dense
        res["verify"] = {"removed": rem, "acc": float(got[:, 0].mean()), "dm": float(got[:, 1].mean()),
                         **paired(dense, got, n_boot, seed)}
    if verify_curve:   # ground truth along the plan's own order, every k: what evaluate.py calibrates c on
        log(f"plan: measuring the order's prefixes k = 1..{L - 1} ...")
        actual = np.full((len(t.samples), L, 2), np.nan)
        actual[:, 0] = dense
        for k in tqdm(range(1, L), desc="plan: verify curve", disable=not progress):
            actual[:, k] = without(res["order"][:k])
        res["verify_curve"] = {"k": list(range(L)), "acc": actual[:, :, 0].mean(0).tolist(),
                               "dm": actual[:, :, 1].mean(0).tolist()}
    if held is not None:
        from .holdout import verify_holdout as _holdout
        log(f"plan: verifying the recommended set on {len(held)} held-out questions ...")
        res["verify_holdout"] = _holdout(lm, held, fmt, res["recommended"]["removed"], score_kind=score_kind,
                                         margin=margin, batch_size=batch_size, n_boot=n_boot, seed=seed)
    if export:
        from ..prune.export import export_pruned
        res["exported"] = str(export_pruned(lm, res["recommended"]["removed"], export))
    res["seconds"] = round(time.time() - t0, 1)
    def outcomes(r, o):     # per-question outcomes, for the leave-one-out evaluation (numpy, no pickle)
        arrays = {"dense": dense, "single": single, **({"actual": actual} if verify_curve else {})}
        np.savez(o / "outcomes.npz", **arrays)
        return o / "outcomes.npz"

    def md(r, o):
        from ..results import atomic_write_text
        return atomic_write_text(o / "plan.md", summary_md(r))
    res = _finish(out, "plan", res, [lambda r, o: plan_figure(r, o / "plan.png"), outcomes, md])
    j.close()
    return res


def depth_verdict(p: dict) -> str | None:
    """The verdict of the estimator the plan's transition depth came from; None: not checked (a depth given with
    --tp). Plans made before `tp_verdict` was recorded carry it in the text of `tp_source`."""
    if "tp_verdict" in p:
        return p["tp_verdict"]
    src = str(p.get("tp_source"))
    return NOT_IDENTIFIED if "not identified" in src else IDENTIFIED if "(identified)" in src else None


def summary_md(p: dict) -> str:
    from .evaluate import at_chance
    r, c = p["recommended"], p["critical"]
    ci = lambda x: f"[{x[0]:.3f}, {x[1]:.3f}]"                                    # noqa: E731
    bound = lambda x: "none" if x is None else f"{x:.3f}"                          # noqa: E731
    crit = ("no collapse predicted within L-1 removals" if c["k"] is None else
            f"{c['ratio']:.3f} ({c['k']} of {p['num_layers']} layers), 95% interval "
            f"[{bound(c['ratio_ci'][0])}, {bound(c['ratio_ci'][1])}]")
    lines = [f"# Pruning plan: {p.get('model')} on {p.get('task')}", "",
             f"- Dense accuracy {p['dense']['acc']:.3f} on n = {p['n_samples']} ({p.get('format')}, score "
             f"{p.get('score_kind')}); chance {p['chance']:.3f}; transition depth {p['tp']} ({p['tp_source']})"
             + ("." if p["tp"] is None or depth_verdict(p) == IDENTIFIED else
                ": the phase labels below rest on a depth its CI does not locate." if depth_verdict(p) else
                ": the phase labels below rest on a depth whose CI was not checked (given with --tp)."),
             f"- Predicted critical ratio (accuracy below halfway to chance): {crit}.",
             *([f"- **Warning**: at chance: {why}. The model may decide nothing on these questions, and its "
                f"critical ratio would mean nothing."] if (why := at_chance(p)) else []),
             f"- Recommended: remove {r['k']} layer(s) {r['removed']} (ratio {r['ratio']:.3f}); predicted accuracy "
             f"{r['predicted_acc']:.3f} {ci(r['predicted_acc_ci'])}, change {r['predicted_d_acc']:+.3f} "
             f"{ci(r['predicted_d_acc_ci'])}" + (f" (budget: expected drop <= {p['max_drop']})"
                                                 if p.get("max_drop") is not None
                                                 else f" (ratio asked: {p['ratio_asked']})") + "."]
    if p.get("safe"):
        sf = p["safe"]
        lines.append(f"- Safe (the whole 95% band of the change within the budget): remove {sf['k']} layer(s) "
                     f"{sf['removed']}, change band {ci(sf['predicted_d_acc_ci'])}.")
    if p.get("verify"):
        v = p["verify"]
        lines.append(f"- Verified: actual accuracy {v['acc']:.3f}, change {v['d_acc']:+.3f} {ci(v['d_acc_ci'])} "
                     f"against dense (predicted {r['predicted_d_acc']:+.3f}).")
    if p.get("verify_holdout"):
        h = p["verify_holdout"]
        lines.append(f"- Verified on {h['n']} held-out questions (not planned on): dense {h['dense_acc']:.3f}, without "
                     f"the set {h['acc']:.3f}, change {h['d_acc']:+.3f} {ci(h['d_acc_ci'])}.")
    lines += ["", "Why:", ""] + [f"- {x}" for x in p["explanation"]]
    c, vc = p["curve"], p.get("verify_curve") or {}
    meas = dict(zip(vc.get("k", []), vc.get("acc", [])))
    order = p.get("order") or []
    lines += ["", "Expected accuracy at each ratio (the order's first k layers removed; measured: --verify-curve):", "",
              "| k | ratio | k-th layer removed | predicted accuracy [95% band] | measured |", "|---:|---:|---|---|---:|"]
    for k, a, (lo, hi) in zip(c["k"], c["acc"], c["acc_ci"]):
        m = meas.get(k)
        lines.append(f"| {k} | {k / p['num_layers']:.3f} | {order[k - 1] if 0 < k <= len(order) else '-'} | {a:.3f} "
                     f"[{lo:.3f}, {hi:.3f}] | {'-' if m is None else f'{m:.3f}'} |")
    lines += ["", "Method: single-layer removals of the dense model, summed (first-order additivity, c = "
              f"{p['additivity_c']}); bands are question-bootstrap 95% intervals that re-rank the layers in every "
              "resample. --verify measures the set on the same questions it was chosen on (in-sample); "
              "`plan-eval` scores the prediction against trajectories. See prunelens/plan/predict.py.", ""]
    return "\n".join(lines)


def replan(run_dir, **kw) -> dict:
    """Recompute a finished plan's prediction from its stored per-question outcomes (outcomes.npz), e.g. after the
    prediction rule changed, without the model: the same questions, tp, budget and bootstrap. With a verify curve
    (--verify-curve) the verified set is read off it. Rewrites plan.json, plan.md and plan.png in place (atomic
    writes); returns the new plan."""
    from pathlib import Path

    from ..results import atomic_write_text, read_json, write_json
    from .figures import plan_figure
    d = Path(run_dir)
    old = read_json(d / "plan.json")
    z = np.load(d / "outcomes.npz", allow_pickle=False)
    args = dict(chance=old["chance"], tp=old.get("tp"), tp_source=old.get("tp_source"), tp_verdict=depth_verdict(old),
                max_drop=old.get("max_drop") if old.get("max_drop") is not None else 0.05, ratio=old.get("ratio_asked"),
                c=old.get("additivity_c", 1.0), gamma=old.get("gamma", 0.5), n_boot=old.get("n_boot", 1000),
                seed=old.get("seed", (old.get("config") or {}).get("seed", 0)))
    new = {**old, **make_plan(z["dense"], z["single"], **{**args, **kw})}
    if "actual" in z.files:
        k = new["recommended"]["k"]
        a, dense = z["actual"][:, k], z["dense"]
        new["verify"] = {"removed": new["recommended"]["removed"], "acc": float(a[:, 0].mean()),
                         "dm": float(a[:, 1].mean()), **paired(dense, a, args["n_boot"], args["seed"]),
                         "source": "verify curve"}
    new["replanned"] = "prediction recomputed from outcomes.npz by prunelens.plan.run.replan"
    write_json(d / "plan.json", new)
    atomic_write_text(d / "plan.md", summary_md(new))
    plan_figure(new, d / "plan.png")
    return new
