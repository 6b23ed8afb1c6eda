"""`prunelens plan`: the prediction on planted outcomes (known answer), and end to end on a tiny model whose
identity layers are known by construction."""
import json

import numpy as np
import pytest
import torch

from helpers import tiny_lm, tiny_samples, write_tiny_qa
from prunelens.plan.predict import critical_k, predicted_curve, recommend, removal_order
from prunelens.plan.run import make_plan, single_removals


def planted(N=400, seed=0):
    """Dense: 80% correct. Removing layer 1 or 3 changes nothing; layer 0 loses 10% of the questions, layer 2
    20%, layer 4 40%, layer 5 60% (disjoint flips: the additive prediction is exact for singles)."""
    rng = np.random.default_rng(seed)
    dense = np.stack([(rng.random(N) < 0.8).astype(float), rng.normal(1.0, 0.5, N)], 1)
    single = np.repeat(dense[:, None, :], 6, 1).copy()
    right = np.flatnonzero(dense[:, 0] == 1)
    for layer, share in ((0, 0.1), (2, 0.2), (4, 0.4), (5, 0.6)):
        flip = rng.choice(right, int(share * N), replace=False)
        single[flip, layer, 0] = 0
        single[flip, layer, 1] -= 2.0
    return dense, single


def test_order_curve_and_critical_ratio_on_planted_outcomes():
    dense, single = planted()
    d = single - dense[:, None]
    order = removal_order(d[..., 1].mean(0), d[..., 0].mean(0))
    assert order[:2] == [3, 1] and order[2:] == [0, 2, 4, 5]           # free layers first (deeper first on ties)
    c = predicted_curve(dense, single, order, n_boot=300, chance=0.25)
    dacc = dense[:, 0].mean()
    assert c["acc"][:3] == pytest.approx([dacc] * 3) and c["acc"][3] == pytest.approx(dacc - 0.1, abs=1e-9)
    assert c["acc"][4] == pytest.approx(max(0.25, dacc - 0.3), abs=1e-9)
    assert c["d_acc_ci"][2] == [0.0, 0.0]                              # nothing moves when only free layers go
    k = critical_k(np.array(c["acc"]), dacc, 0.25)                     # halfway: 0.25 + 0.5 * 0.55 = 0.525
    assert k == 4                                                      # 0.8 - 0.3 = 0.5 < 0.525; 0.7 is not
    assert recommend(c, 0.0) == 2 and recommend(c, 0.15) == 3
    assert recommend(c, 0.0, safe=True) == 2                           # the free layers' band is exactly [0, 0]
    assert recommend(c, 0.1) == 3 and recommend(c, 0.1, safe=True) == 2   # -0.1 expected; its band reaches -0.12
    p = make_plan(dense, single, chance=0.25, tp=4, tp_source="given", max_drop=0.0, n_boot=300)
    assert p["recommended"]["removed"] == [1, 3] and p["critical"]["k"] == 4
    lo, hi = p["critical"]["k_ci"]
    assert lo <= 4 <= hi
    phase = {e["layer"]: e["phase"] for e in p["single_layer_effects"]}
    assert phase[3] == "silent" and phase[4] == "decisive"           # a layer takes its input state's phase
    assert any(x.startswith("remove layer 1 (silent phase)") for x in p["explanation"])
    assert make_plan(dense, single, chance=0.25, ratio=0.5, n_boot=50)["recommended"]["removed"] == [0, 1, 3]


def test_no_collapse_is_censored_not_invented():
    dense, single = planted()
    single = np.repeat(dense[:, None, :], 6, 1)                        # nothing matters
    p = make_plan(dense, single, chance=0.25, max_drop=0.0, n_boot=100)
    assert p["critical"]["k"] is None and p["critical"]["censored"] and p["critical"]["k_ci"] == [None, None]
    assert p["recommended"]["k"] == 5                                 # at most L - 1 layers


def _with_identity_layers(lm, layers):
    with torch.no_grad():
        for i in layers:
            lm.model.model.layers[i].self_attn.o_proj.weight.zero_()
            lm.model.model.layers[i].mlp.down_proj.weight.zero_()
    return lm


@pytest.mark.parametrize("fmt", ["cloze", "letter"])
def test_single_removals_from_the_stored_dense_prefix_equal_whole_passes(fmt):
    """The cloze passes start at the removed layer from the dense residual stored per forward call; every number
    equals a whole pass of the pruned model (and letter format, which has no resume path, runs whole)."""
    from prunelens.engine.score import score
    from prunelens.model.surgery import keep_from_remove, pruned_view
    from prunelens.analyses.ablation import final_outcome as _outcome
    from prunelens.engine.prefix import DensePrefix
    from prunelens.plan.run import _score_without
    lm, S = tiny_lm("gemma3", num_layers=5), tiny_samples(7)
    prefix = DensePrefix(fmt)
    dense, single = single_removals(lm, S, fmt, batch_size=3, progress=False, prefix=prefix)
    assert bool(prefix.store) == (fmt == "cloze")
    for removed in ([0], [2], [4], [1, 3], [3, 4]):
        with pruned_view(lm, keep_from_remove(removed, 5)):
            whole = _outcome(score(lm, S, fmt, depths=[5 - len(removed)], batch_size=3, progress=False), "raw",
                             "logit")
        got = single[:, removed[0]] if len(removed) == 1 else _score_without(lm, S, fmt, removed, prefix, "raw",
                                                                              "logit", 3)
        np.testing.assert_allclose(got, whole, atol=1e-5)


def test_identity_layers_cost_nothing_exactly():
    lm = _with_identity_layers(tiny_lm("llama", num_layers=5), [1, 3])
    dense, single = single_removals(lm, tiny_samples(8), "cloze", progress=False)
    for i in (1, 3):
        np.testing.assert_allclose(single[:, i], dense, atol=1e-5)
    assert max(np.abs(single[:, i] - dense).max() for i in (0, 2, 4)) > 1e-3


def test_cli_plan_verify_and_export(tmp_path, capsys):
    from prunelens.cli import main
    from prunelens.model import load_model
    from tiny import make_model, make_tokenizer

    m = make_model("llama", num_layers=5)
    with torch.no_grad():
        for i in (1, 3):
            m.model.layers[i].self_attn.o_proj.weight.zero_()
            m.model.layers[i].mlp.down_proj.weight.zero_()
    m.save_pretrained(tmp_path / "m")
    make_tokenizer(tmp_path / "m")
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 10)
    common = ["--model", str(tmp_path / "m"), "--device", "cpu", "--tasks", str(spec), "--n-boot", "100"]
    assert main(["plan", *common, "--max-drop", "0", "--verify", "--verify-curve", "--export",
                 str(tmp_path / "pruned"), "--out", str(tmp_path / "p")]) == 0
    p = json.loads((tmp_path / "p" / "plan.json").read_text())
    rem = p["recommended"]["removed"]
    assert rem == sorted(p["order"][:p["recommended"]["k"]])           # a prefix of the damage order
    assert p["recommended"]["predicted_d_acc"] >= 0                    # --max-drop 0: no expected loss
    assert p["safe"]["predicted_d_acc_ci"][0] >= 0 and p["safe"]["k"] <= p["recommended"]["k"]   # nor in the band
    assert p["verify"]["removed"] == rem and (tmp_path / "p" / "plan.png").exists()
    assert "Pruning plan" in (tmp_path / "p" / "plan.md").read_text() and "Recommended" in capsys.readouterr().out
    from collections import Counter
    from prunelens.tasks import load_task
    gold = Counter(s.gold for s in load_task(str(spec)).samples)
    assert p["constant_chance"] == pytest.approx(max(gold.values()) / 10)
    assert gold[p["constant_option"]] == max(gold.values())
    from prunelens.plan.run import summary_md                     # plan.md warns exactly when the plan is at chance
    from prunelens.plan.evaluate import at_chance
    assert ("**Warning**: at chance" in summary_md(p)) == bool(at_chance(p))
    assert "**Warning**: at chance" in summary_md({**p, "constant_chance": p["dense"]["acc"]})
    assert load_model(str(tmp_path / "pruned"), device="cpu").anatomy.num_layers == 5 - len(rem)
    eff = {e["layer"]: e for e in p["single_layer_effects"]}
    assert eff[1]["d_acc"] == 0 and eff[3]["d_acc"] == 0 and abs(eff[1]["d_dm"]) < 1e-5
    z = np.load(tmp_path / "p" / "outcomes.npz", allow_pickle=False)
    assert z["single"].shape == (10, 5, 2) and z["actual"].shape == (10, 5, 2)
    k = p["recommended"]["k"]
    assert p["verify_curve"]["acc"][k] == pytest.approx(p["verify"]["acc"])   # the same set, measured twice
    assert p["verify_curve"]["acc"][0] == pytest.approx(p["dense"]["acc"])
    from prunelens.report.html import build_report
    html = build_report([tmp_path / "p"], tmp_path / "rep.html").read_text()
    assert 'id="plan"' in html and "Recommended: remove" in html and html.count("<img") == 1 and " None " not in html
    # replan: the same prediction from the stored outcomes, without the model; verify read off the verify curve
    from prunelens.plan.run import replan
    again = replan(tmp_path / "p")
    assert again["recommended"] == p["recommended"] and again["critical"] == p["critical"]
    assert again["verify"]["acc"] == pytest.approx(p["verify"]["acc"])
    wider = replan(tmp_path / "p", max_drop=0.5)
    assert wider["recommended"]["k"] >= p["recommended"]["k"]
    assert wider["verify"]["acc"] == pytest.approx(wider["verify_curve"]["acc"][wider["recommended"]["k"]])
    capsys.readouterr()
    assert main(["plan", *common, "--max-drop", "0.1", "--ratio", "0.5", "--out", str(tmp_path / "bad")]) == 2
    assert "--max-drop or --ratio" in capsys.readouterr().err
    assert main(["plan", *common, "--tp-from", str(tmp_path / "nothing"), "--out", str(tmp_path / "bad2")]) == 2
    assert "not a finished analyze run" in capsys.readouterr().err and not (tmp_path / "bad2").exists()
    # --tp-from: the depth of a finished analyze run of the same task, with the estimator and verdict it came from
    from prunelens.metrics.estimators import phase_depth
    assert main(["analyze", "--model", str(tmp_path / "m"), "--device", "cpu", "--tasks", str(spec), "--n-boot", "100",
                 "--out", str(tmp_path / "a")]) == 0
    a = json.loads((tmp_path / "a" / "analysis.json").read_text())
    want = phase_depth(a["estimators"])
    assert main(["plan", *common, "--tp-from", str(tmp_path / "a"), "--out", str(tmp_path / "pf")]) == 0
    pf = json.loads((tmp_path / "pf" / "plan.json").read_text())
    assert pf["tp"] == (None if want is None else want["depth"]) and str(tmp_path / "a") in pf["tp_source"]
    assert pf["tp_source"].startswith("none in" if want is None else want["source"])
    other = write_tiny_qa(tmp_path / "other.jsonl", 10)              # a run of another task is refused
    assert main(["plan", "--model", str(tmp_path / "m"), "--device", "cpu", "--tasks", str(other), "--n-boot", "100",
                 "--tp-from", str(tmp_path / "a"), "--out", str(tmp_path / "pf2")]) == 2
    assert "a run of qa" in capsys.readouterr().err


def test_phase_depth_prefers_an_identified_tp_and_says_what_it_read():
    from prunelens.metrics.estimators import IDENTIFIED, NOT_IDENTIFIED, phase_depth
    e = lambda p, v: {"point": p, "verdict": v, "ci": [p, p]}                     # noqa: E731
    assert phase_depth({"mean_dm_tp": e(9, IDENTIFIED), "decision_depth_pred": e(12, IDENTIFIED)})["depth"] == 9
    got = phase_depth({"mean_dm_tp": e(9, NOT_IDENTIFIED), "decision_depth_pred": e(12, NOT_IDENTIFIED)})
    assert (got["depth"], got["estimator"]) == (12, "decision_depth_pred") and "not identified" in got["source"]
    assert phase_depth({"mean_dm_tp": e(None, NOT_IDENTIFIED), "decision_depth_pred": e(None, NOT_IDENTIFIED)}) is None
    assert phase_depth(None) is None


def _write_point(root, model, task, dense, single, actual, tp, truth_ratios):
    """A plan run folder and its trajectories, as the commands write them."""
    from prunelens.results import write_json
    p = make_plan(dense, single, chance=0.25, tp=tp, max_drop=0.05, n_boot=200)
    k = p["recommended"]["k"]
    p.update(model=model, task=task, verify={"acc": float(actual[:, k, 0].mean()), "removed": p["recommended"]["removed"]},
             fingerprint={"samples": f"digest-{model}"})
    d = root / "plans" / model / task
    d.mkdir(parents=True)
    write_json(d / "plan.json", p)
    np.savez(d / "outcomes.npz", dense=dense, single=single, actual=actual)
    L = single.shape[1]
    dacc = float(dense[:, 0].mean())
    for method, crit in truth_ratios.items():
        # accuracy stays at dense until the critical count, then falls to chance
        steps = [{"removed": list(range(j)), "ratio": j / L, "acc": dacc if j / L < crit else 0.25}
                 for j in range(1, L)]
        t = {"model": model, "task": task, "num_layers": L, "chance": 0.25, "dense": {"acc": dacc, "removed": []},
             "fingerprint": {"samples": f"digest-{model}"},
             "steps": steps, "params": {"method": method, "skip": method == "iterative"}}
        (root / "traj" / model / task / method).mkdir(parents=True)
        write_json(root / "traj" / model / task / method / "trajectory.json", t)
    return p


def test_leave_one_out_evaluation_on_planted_points(tmp_path, capsys):
    from prunelens.plan.evaluate import evaluate, fit_c, load_points
    made = []
    for j, (share, tp) in enumerate(((1.0, 3), (1.5, 4), (2.0, 2), (1.2, 5))):
        dense, single = planted(seed=j)
        # the measured prefixes lose `share` times what the single removals add up to: c should come out ~share
        d = single - dense[:, None]
        order = removal_order(d[..., 1].mean(0), d[..., 0].mean(0))
        actual = np.repeat(dense[:, None], 6, 1).copy()
        cum = np.cumsum(d[:, order], 1)
        actual[:, 1:, 0] = dense[:, None, 0] + share * cum[:, :-1, 0]
        made.append(_write_point(tmp_path, f"m{j}", "qa", dense, single, actual, tp,
                                 {"iterative": 0.5, "tail": 0.34, "shortgpt": 0.5}))
    points = load_points([tmp_path / "plans"], [tmp_path / "traj"])
    assert len(points) == 4 and set(points[0]["truth"]) == {"ip_skip", "tail", "shortgpt"}
    c_all = fit_c(points)
    assert 1.0 < c_all < 2.0
    res = evaluate(points)
    rows = res["points"]
    assert [r["truth"] for r in rows] == [pytest.approx(0.5)] * 4
    assert [r["paper_rule"] for r in rows] == [pytest.approx((6 - tp) / 6) for tp in (3, 4, 2, 5)]
    mae = np.mean([abs(r["paper_rule"] - 0.5) for r in rows])
    assert res["scores"]["paper_rule"]["mae"] == pytest.approx(mae)
    assert res["scores"]["last_25pct"]["mae"] == pytest.approx(0.25)
    for r, p in zip(rows, points):          # leave-one-out: the held-out point's own curve never sets its c
        assert r["plan_loo_c"] == pytest.approx(fit_c([q for q in points if q is not p]))
    from prunelens.plan.evaluate import predictions       # ... nor does a second sample of the same model and task
    twice = predictions(points + [{**points[0]}])
    assert twice[0]["plan_loo_c"] == twice[-1]["plan_loo_c"] == pytest.approx(fit_c(points[1:]))
    # and is scored once: the sample with more questions, the other listed as left out
    small = {**points[0], "dir": "small", "plan": {**points[0]["plan"], "n_samples": 5}}
    r_dup = evaluate(points + [small])
    assert r_dup["scores"]["plan"] == evaluate(points)["scores"]["plan"]
    assert [x["dir"] for x in r_dup["excluded"]] == ["small"] and "another sample" in r_dup["excluded"][0]["why"]
    assert set(res["versus"]) == {"plan_vs_paper_rule", "plan_vs_last_25pct", "plan_loo_vs_paper_rule",
                                  "plan_loo_vs_last_25pct"}
    assert all(v["verdict"].startswith("not enough data") for v in res["versus"].values())   # 4 < 8 points
    b = res["budget"]
    want = sum(p["verify"]["acc"] >= p["dense"]["acc"] - 0.05 for p in made)
    assert (b["plan"]["within"] + b["plan_empty"]["within"]) == want
    # the tail trajectory at 25% (2 of 6 layers; its critical ratio 0.34) keeps dense accuracy: within budget
    assert (b["last_25pct"]["n"], b["last_25pct"]["within"]) == (4, 4)
    assert res["scores"]["_common"]["n"] == sum(r["plan"] is not None and r["plan_loo"] is not None for r in rows)
    # the plan's set against ShortGPT's of as many blocks, paired by hand: ShortGPT keeps dense accuracy below its
    # critical ratio 0.5 (drop 0), so the difference is the plan's own drop, on points that remove >= 1 block
    sv = res["sets_versus"]["plan_vs_shortgpt"]
    mine = [p["dense"]["acc"] - p["verify"]["acc"] for p in made if 1 <= p["recommended"]["k"] < 3]
    assert sv["n"] == len(mine) and (not mine or sv["drop_diff"] == pytest.approx(np.mean(mine)))
    assert sv["verdict"].startswith("not enough data")
    assert b["plan"]["n"] + b["plan_empty"]["n"] == 4
    assert res["excluded"] == []
    # a point whose dense accuracy is not above chance has no critical ratio worth scoring: left out, with why
    low = [{**p, "plan": {**p["plan"], "dense": {**p["plan"]["dense"], "acc": 0.27}}} if i == 0 else p
           for i, p in enumerate(points)]
    r2 = evaluate(low)
    assert [e["model"] for e in r2["excluded"]] == ["m0"] and "chance 0.250 (uniform)" in r2["excluded"][0]["why"]
    assert r2["scores"] == evaluate(points[1:])["scores"] and len(r2["points"]) == 3
    # ... and so is one whose dense accuracy is what always giving one option scores (a "yes" to every question)
    const = [{**p, "plan": {**p["plan"], "constant_chance": p["plan"]["dense"]["acc"]}} if i == 1 else p
             for i, p in enumerate(points)]
    r3 = evaluate(const)
    assert [e["model"] for e in r3["excluded"]] == ["m1"] and "(always option" in r3["excluded"][0]["why"]
    # a trajectory of other questions is no ground truth for the plan
    from prunelens.plan.evaluate import same_questions
    t = json.loads((tmp_path / "traj" / "m0" / "qa" / "tail" / "trajectory.json").read_text())
    assert same_questions(points[0]["plan"], {**t, "fingerprint": {"samples": "other"}}) is False
    assert same_questions(points[0]["plan"], t) is True
    assert same_questions(points[0]["plan"], {**t, "params": {**t["params"], "score": "norm"}}) is False  # other score
    # the command and the report section
    from prunelens.cli import main
    from prunelens.report.html import build_report
    assert main(["plan-eval", "--plans", str(tmp_path / "plans"), "--trajectories", str(tmp_path / "traj"),
                 "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "last_25pct: MAE 0.250 [" in printed and "00000" not in printed         # 3 decimals, as people read
    ev = json.loads((tmp_path / "ev" / "plan_evaluation.json").read_text())
    assert (tmp_path / "ev" / "plan_evaluation.png").stat().st_size > 0
    md = (tmp_path / "ev" / "plan_evaluation.md").read_text()
    assert "plan_vs_shortgpt, paired drop" in md
    # one table row per scored pair, its drops the ones computed above (ShortGPT keeps dense accuracy: +0.000)
    rows_md = [ln for ln in md.splitlines() if ln.startswith("| m")]
    assert len(rows_md) == 4 and all(ln.endswith(" (2) |") for ln in rows_md)      # last 25% of 6 blocks: 2
    for ln, p in zip(rows_md, made):
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert cells[5] == str(p["recommended"]["k"])
        assert cells[6] == f"{p['dense']['acc'] - p['verify']['acc']:+.3f}"
    assert ev["scores"]["last_25pct"]["mae"] == pytest.approx(0.25)
    html = build_report([tmp_path / "ev"], tmp_path / "rep.html").read_text()
    assert "Leave-one-out evaluation" in html and "not enough data (n = 4 &lt; 8 points)" in html


def test_fit_c_is_set_by_the_region_before_collapse_not_by_the_chance_floor():
    """Measured prefixes lose twice what the single removals add up to, until accuracy sits at chance: c must come
    out 2 (fitted up to the measured critical k), not the smaller value the flat chance tail would pull it to."""
    from prunelens.plan.evaluate import fit_c
    N, L = 100, 8
    dense = np.stack([np.r_[np.ones(80), np.zeros(20)], np.ones(N)], 1)
    single = np.repeat(dense[:, None], L, 1).copy()
    for layer in range(L):                                   # each layer alone: 5 of the right answers flip
        single[5 * layer:5 * layer + 5, layer, 0] = 0
    actual = np.repeat(dense[:, None], L, 1).copy()   # every layer costs the same: the order does not matter
    for k in range(1, L):
        actual[:, k, 0] = max(0.25, 0.8 - 2 * 0.05 * k)      # twice the additive loss, floored at chance
    p = make_plan(dense, single, chance=0.25, n_boot=20)
    assert fit_c([{"plan": p, "outcomes": {"dense": dense, "single": single, "actual": actual}}]) == pytest.approx(2.0)


def test_last_25pct_and_spearman_interval():
    from scipy import stats
    from prunelens.plan.evaluate import MIN_POINTS, _spearman_ci, last_25pct_k
    assert [last_25pct_k(L) for L in (6, 18, 30, 32)] == [2, 5, 8, 8]            # halves up, not to even
    x = np.linspace(0.1, 0.6, 10)
    assert _spearman_ci(x, x) == pytest.approx([1.0, 1.0])                                   # a perfect ranking stays perfect
    assert _spearman_ci(x[:MIN_POINTS - 1], x[:MIN_POINTS - 1]) is None          # too few points for an interval
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(size=40)
    lo, hi = _spearman_ci(a, b)
    assert lo < stats.spearmanr(a, b).statistic < hi and lo < 0 < hi           # unrelated: the CI holds 0


def test_sets_versus_pairs_each_plan_with_the_baseline_at_its_own_k():
    """Planted: on 9 points the plan's set loses 0.01 and ShortGPT's set of as many blocks 0.05 -> the paired
    difference is -0.04 with a CI below 0; a 10th point recommends nothing and is counted apart, not paired."""
    from prunelens.plan.evaluate import budget_shares, sets_versus

    def traj(dense, drops):          # drops[k-1]: accuracy lost with k blocks removed
        return {"dense": {"acc": dense, "removed": []}, "params": {"method": "shortgpt"},
                "steps": [{"removed": list(range(k)), "acc": dense - d} for k, d in enumerate(drops, 1)]}
    rng = np.random.default_rng(0)
    points = []
    for i in range(10):
        k = 0 if i == 9 else int(rng.integers(1, 4))
        dense = 0.6 + 0.01 * i
        plan = {"dense": {"acc": dense}, "recommended": {"k": k}, "max_drop": 0.03, "num_layers": 12,
                "verify": {"acc": dense - (0.01 + 0.002 * (i % 3)) if k else dense}}
        drops = [0.05 + 0.002 * (i % 2)] * 4
        points.append({"plan": plan, "truth": {"shortgpt": [{"traj": traj(dense + 0.01, drops)}]}})
    sv = sets_versus(points)["plan_vs_shortgpt"]
    want = np.mean([(0.01 + 0.002 * (i % 3)) - (0.05 + 0.002 * (i % 2)) for i in range(9)])
    assert sv["n"] == 9 and sv["drop_diff"] == pytest.approx(want) and sv["ci"][1] < 0
    assert sv["verdict"] == "plan's set loses less (in-sample)"
    b = budget_shares(points)
    assert (b["plan"]["n"], b["plan"]["within"]) == (9, 9) and (b["plan_empty"]["n"], b["plan_empty"]["within"]) == (1, 1)
    assert (b["shortgpt"]["n"], b["shortgpt"]["within"]) == (9, 0)     # 0.05 > the 0.03 budget; k = 0 not counted
    assert b["plan_holdout"]["n"] == 0                                 # no plan was checked on held-out questions
    from prunelens.plan.evaluate import set_drops          # the per-point drops these shares count
    s0 = set_drops(points[0])
    assert s0["k"] == points[0]["plan"]["recommended"]["k"] and s0["plan"] == pytest.approx(0.01)
    assert s0["shortgpt"] == pytest.approx(0.05) and s0["last_25pct"] is None and s0["last_25pct_k"] == 3
    # held out: the first three sets lose 0.02 (within 0.03), the next two 0.04 (not); the empty plan is not counted
    for i, pt in enumerate(points[:5] + [points[9]]):
        pt["plan"]["verify_holdout"] = {"dense_acc": 0.5, "acc": 0.5 - (0.02 if i < 3 else 0.04)}
    b = budget_shares(points)
    assert (b["plan_holdout"]["n"], b["plan_holdout"]["within"]) == (5, 3)
    points[3]["plan"]["verify_holdout"] = {"dense_acc": 0.52, "acc": 0.49}   # a drop of exactly the budget, in floats
    assert budget_shares(points)["plan_holdout"]["within"] == 4


def test_verify_holdout_measures_other_questions_against_a_plain_forward(tmp_path, capsys):
    from helpers import hand_model, plain_cloze_scores
    from prunelens.cli import main
    from prunelens.plan.holdout import add_to_plan, holdout_samples
    from prunelens.tasks import load_task
    from tiny import make_model, make_tokenizer

    torch.manual_seed(3)
    m = make_model("llama", num_layers=4)
    m.save_pretrained(tmp_path / "m")
    tok = make_tokenizer(tmp_path / "m")
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 16)
    common = ["--model", str(tmp_path / "m"), "--device", "cpu", "--tasks", str(spec), "--n-boot", "100",
              "--sample", "8", "--seed", "0"]
    # more held-out questions than the split has besides the planned ones: one error, before the model loads
    assert main(["plan", *common, "--verify-holdout", "9", "--out", str(tmp_path / "bad")]) == 2
    assert "--verify-holdout 9" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["plan", *common, "--ratio", "0.5", "--verify", "--verify-holdout", "6", "--out", str(tmp_path / "p")]) == 0
    p = json.loads((tmp_path / "p" / "plan.json").read_text())
    h = p["verify_holdout"]
    planned = load_task(str(spec), sample=8, seed=0).samples
    held = holdout_samples({}, [s.id for s in planned], 6, 0, str(spec))
    assert len(held) == 6 and not {s.id for s in held} & {s.id for s in planned}
    planned1 = load_task(str(spec), sample=8, seed=1).samples             # another seed: another, still disjoint set
    held1 = holdout_samples({}, [s.id for s in planned1], 6, 1, str(spec))
    assert {s.id for s in held1} != {s.id for s in held} and not {s.id for s in held1} & {s.id for s in planned1}
    from prunelens.fingerprint import samples_digest
    assert h["samples_digest"] == samples_digest(held)                       # measured on exactly those questions
    assert h["n"] == 6 and h["removed"] == p["recommended"]["removed"] == p["verify"]["removed"]
    assert len(h["removed"]) == 2                                            # --ratio 0.5 of 4 layers

    def acc(model):          # final-depth raw cloze scores by one plain HF forward per option, argmax vs gold
        model.config.use_cache = False
        sc = plain_cloze_scores(model, tok, held)[:, -1]
        return float(np.mean([np.nanargmax(sc[i]) == s.gold for i, s in enumerate(held)]))

    keep = [i for i in range(4) if i not in h["removed"]]
    assert h["dense_acc"] == pytest.approx(acc(m)) and h["acc"] == pytest.approx(acc(hand_model(m, keep)))
    assert h["d_acc"] == pytest.approx(h["acc"] - h["dense_acc"])
    assert "held-out questions" in (tmp_path / "p" / "plan.md").read_text()
    # the same check added to a finished plan, without planning again: the same numbers
    from prunelens.model import load_model
    del p["verify_holdout"]
    (tmp_path / "p" / "plan.json").write_text(json.dumps(p))
    again = add_to_plan(tmp_path / "p", load_model(str(tmp_path / "m"), device="cpu"), 6, task=str(spec),
                        log=lambda *a: None)
    assert again["verify_holdout"] == h


def test_plan_md_says_whether_the_phase_depth_is_located():
    from prunelens.metrics.estimators import IDENTIFIED, NOT_IDENTIFIED
    from prunelens.plan.run import depth_verdict, summary_md
    dense, single = planted()
    base = dict(chance=0.25, tp=4, max_drop=0.0, n_boot=50)
    line = lambda p: summary_md({**p, "model": "m", "task": "t"}).splitlines()[2]     # noqa: E731
    ok = make_plan(dense, single, tp_source="mean_dm_tp (identified)", tp_verdict=IDENTIFIED, **base)
    assert line(ok).endswith(f"({ok['tp_source']}).")
    no = make_plan(dense, single, tp_source="decision_depth_pred (not identified at this n)",
                   tp_verdict=NOT_IDENTIFIED, **base)
    assert "its CI does not locate" in line(no)
    given = make_plan(dense, single, tp_source="given (--tp)", **base)
    assert depth_verdict(given) is None and "was not checked (given with --tp)" in line(given)
    # plans stored before tp_verdict: read from the text of tp_source
    old = {k: v for k, v in no.items() if k != "tp_verdict"}
    assert depth_verdict(old) == NOT_IDENTIFIED and "does not locate" in line(old)
    assert depth_verdict({"tp_source": "decision_depth_pred (identified) of x"}) == IDENTIFIED
