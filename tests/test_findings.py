"""Every finding is decided by an interval: hand-made inputs for "holds", "does not hold" and "not resolved at this n"
per check (and "not enough data" where nothing is given). Pure numpy, no model."""
import numpy as np
import pandas as pd
import pytest

from prunelens.metrics import kl_divergence, label_distribution, option_frequency
from prunelens.report import findings as F
from prunelens.report.findings import FAILS, HOLDS, NODATA, UNRESOLVED, decide, mover


def R(**kw):
    out = {k: [] for k in ("analysis", "trajectory", "cka", "noise", "ablation", "correlation", "recovery",
                           "controls")}
    out.update(kw)
    return out


def test_decide_and_mover():
    assert [decide(0.1, 0.3), decide(-0.3, -0.1), decide(-0.1, 0.1)] == [HOLDS, FAILS, UNRESOLVED]
    assert [decide(0.0, 0.1, ">"), decide(0.0, 0.1, ">=")] == [UNRESOLVED, HOLDS]
    assert [decide(-0.2, -0.1, "<"), decide(0.1, 0.2, "<"), decide(None, 0.1, "<")] == [HOLDS, FAILS, UNRESOLVED]
    assert decide(2, 3, ">=", null=2) == HOLDS and decide(0, 1, ">=", null=2) == FAILS
    d, lo, hi = mover(0.6, [0.5, 0.7], 0.4, [0.37, 0.44])
    assert d == pytest.approx(0.2) and lo == pytest.approx(0.2 - np.hypot(0.1, 0.04))
    assert hi == pytest.approx(0.2 + np.hypot(0.1, 0.03))


def _analysis(tp, ci, L=18, **kw):
    return {"model": "m", "task": "t", "n_samples": 100, "num_layers": L, "transition_point": tp, "tp_ci": ci, **kw}


def test_transition_exists_three_ways():
    f = F.transition_exists
    assert f(R(analysis=[_analysis(9, [7, 11])])).status == HOLDS
    assert f(R(analysis=[_analysis(None, [None, None])])).status == FAILS
    assert f(R(analysis=[_analysis(0, [0, 0])])).status == FAILS
    res = f(R(analysis=[_analysis(9, [7, None])]))
    assert res.status == UNRESOLVED and "95% CI [7, none]" in res.evidence
    assert f(R(analysis=[_analysis(9, None)])).status == UNRESOLVED          # a point TP alone decides nothing
    assert f(R()).status == NODATA


def test_transition_identified_is_the_ci_rule():
    f = F.transition_identified
    assert f(R(analysis=[_analysis(12, [10, 14], tp_none_frac=0.0)])).status == HOLDS
    res = f(R(analysis=[_analysis(12, [3, 15], tp_none_frac=0.0)]))           # inside, but 12 depths wide
    assert res.status == FAILS and "width 12" in res.evidence
    assert f(R()).status == NODATA


def _est(*verdicts):
    keys = ("mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint")
    return {k: {"point": 9, "ci": [8, 10] if v else [2, None],
                "verdict": "identified" if v else "not identified at this n"} for k, v in zip(keys, verdicts)}


def test_where_identified():
    f = F.transition_where_identified
    res = f(R(analysis=[_analysis(9, [8, 10], estimators=_est(False, False, True, False))]))
    assert res.status == HOLDS and "decision depth (gold) 9 [8, 10] identified" in res.evidence
    assert f(R(analysis=[_analysis(9, [8, 10], estimators=_est(False, False, False, False))])).status == FAILS
    assert f(R(analysis=[_analysis(9, [8, 10])])).status == NODATA


def _kl_run(tmp_path, pred, gold, tp):
    n, d = pred.shape
    pd.DataFrame({"sample_id": np.repeat(np.arange(n), d), "depth": np.tile(np.arange(d), n),
                  "gold": np.repeat(gold, d), "pred": pred.reshape(-1)}).to_csv(tmp_path / "samples.csv", index=False)
    of = option_frequency(pred, 3)
    kl = kl_divergence(of, label_distribution(gold, 3)[None])
    return {"model": "m", "task": "t", "transition_point": tp, "_dir": str(tmp_path),
            "depths": [{"kl_to_labels": float(k), "option_frequency": list(o)} for k, o in zip(kl, of)]}


def test_of_matches_labels_three_ways(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 60, 6
    gold = rng.integers(0, 3, n)
    collapsed = np.zeros((n, 3), int)
    for name, pred, want in (("holds", np.hstack([collapsed, np.repeat(gold[:, None], 3, 1)]), HOLDS),
                             ("fails", np.hstack([np.repeat(gold[:, None], 3, 1), collapsed]), FAILS),
                             ("noise", rng.integers(0, 3, (n, d)), UNRESOLVED)):
        (tmp_path / name).mkdir()
        res = F.of_matches_labels(R(analysis=[_kl_run(tmp_path / name, pred, gold, 3)]))
        assert res.status == want, (name, res.evidence)
        assert "95% CI [" in res.evidence
    a = _kl_run(tmp_path / "holds", np.hstack([collapsed, np.repeat(gold[:, None], 3, 1)]), gold, 3)
    a["_dir"] = str(tmp_path / "nowhere")
    assert F.of_matches_labels(R(analysis=[a])).status == UNRESOLVED          # no per-question data, no interval


def _traj(accs, h):
    return {"model": "m", "task": "t", "method": "ip", "num_layers": 8,
            "dense": {"acc": accs[0], "acc_ci": [accs[0] - h, accs[0] + h]},
            "steps": [{"removed": list(range(i + 1)), "ratio": (i + 1) / 8, "acc": a, "acc_ci": [a - h, a + h]}
                      for i, a in enumerate(accs[1:])]}


def test_sudden_collapse_three_ways():
    f = F.sudden_collapse
    assert f(R(trajectory=[_traj([0.8, 0.78, 0.77, 0.3, 0.28], 0.02)])).status == HOLDS     # one cliff
    assert f(R(trajectory=[_traj([0.8, 0.7, 0.6, 0.5, 0.4], 0.01)])).status == FAILS       # a steady slide
    assert f(R(trajectory=[_traj([0.8, 0.79, 0.8], 0.01)])).status == FAILS                # nothing falls
    # the case: n=16, a one-question drop whose CIs span [0.19, 0.69]
    res = f(R(trajectory=[_traj([0.44, 0.44, 0.38], 0.25)]))
    assert res.status == UNRESOLVED and "2·drop − range" in res.evidence
    t = _traj([0.8, 0.78, 0.77, 0.3, 0.28], 0.02)
    del t["steps"][1]["acc_ci"]
    assert f(R(trajectory=[t])).status == UNRESOLVED
    assert f(R()).status == NODATA


def _cka(h, d, h_ci=None, d_ci=None):
    sig = lambda b, ci: {"final_best": b, **({"final_best_ci": ci} if ci else {})}   # noqa: E731
    return {"model": "m", "task": "t", "kept_depths": list(range(7)), "removed": [1, 2], "num_layers": 8,
            "signals": {"hidden": sig(h, h_ci), "decision": sig(d, d_ci)}}


def test_cka_conflict_three_ways():
    f = F.cka_conflict
    res = f(R(cka=[_cka(7, 3)]))
    assert res.status == UNRESOLVED and "no CI" in res.evidence                # cka.json has point matches only
    assert f(R(cka=[_cka(7, 3, [6, 8], [2, 4])])).status == HOLDS
    assert f(R(cka=[_cka(7, 3, [3, 5], [2, 4])])).status == FAILS
    assert f(R(cka=[_cka(7, 3, [5, 8], [2, 4])])).status == UNRESOLVED
    assert f(R()).status == NODATA


def _noise(sil, dec):
    depths = list(range(len(sil) + len(dec)))
    return {"model": "m", "task": "t", "alphas": [1.0], "depths": depths,
            "clean": {"transition_point": len(sil), "dm_final": 2.0, "acc": 0.8},
            "dm_mean": [[2.0 - x for x in sil + dec]], "acc_mean": [[0.8 - x / 4 for x in sil + dec]]}


def test_noise_asymmetry_three_ways():
    f = F.noise_asymmetry
    res = f(R(noise=[_noise([1.5, 1.6, 1.4], [0.1, 0.2, 0.15])]))
    assert res.status == HOLDS and res.evidence.startswith("2 of 2 comparisons hold")
    assert f(R(noise=[_noise([0.1, 0.2, 0.15], [1.5, 1.6, 1.4])])).status == FAILS
    assert f(R(noise=[_noise([0.1, 1.5, 0.9], [0.2, 1.0, 0.6])])).status == UNRESOLVED
    res = f(R(noise=[_noise([1.5], [0.1, 0.2])]))                              # one Silent depth: no interval
    assert res.status == UNRESOLVED and "no interval" in res.evidence
    assert f(R()).status == NODATA


def _ablation(pre, post, h):
    row = lambda rm, d: {"removed": rm, "tasks": {"t": {"acc": 0.6 + d, "d_acc": d,          # noqa: E731
                                                         "d_acc_ci": [d - h, d + h]}}}
    return {"tp": 3, "tasks": ["t"], "rows": [{"removed": [], "tasks": {"t": {"acc": 0.6}}},
                                              row([1], pre), row([2], pre), row([3], post), row([4], post)]}


def test_ablation_asymmetry_three_ways():
    f = F.ablation_asymmetry
    assert f(R(ablation=[_ablation(-0.2, -0.01, 0.04)])).status == HOLDS
    assert f(R(ablation=[_ablation(-0.01, -0.2, 0.04)])).status == FAILS
    # the case: means that differ, paired CIs that contain 0
    res = f(R(ablation=[_ablation(-0.05, -0.02, 0.08)]))
    assert res.status == UNRESOLVED and "difference +0.030" in res.evidence
    a = _ablation(-0.2, -0.01, 0.04)
    del a["rows"][1]["tasks"]["t"]["d_acc_ci"]
    assert f(R(ablation=[a])).status == UNRESOLVED
    assert f(R()).status == NODATA


def _corr(r, n):
    return {"r": r, "p": 0.01, "n": n, "min_significant_r": 0.6, "dropped": []}


def test_correlation_three_ways():
    f = F.correlation_claim
    assert f(R(correlation=[_corr(-0.9, 10)])).status == HOLDS
    assert f(R(correlation=[_corr(0.9, 10)])).status == FAILS
    res = f(R(correlation=[_corr(-0.3, 10)]))
    assert res.status == UNRESOLVED and "r 95% CI [" in res.evidence
    assert f(R(correlation=[_corr(-0.99, 3)])).status == NODATA


def _recovery(gains, last_acc, h=0.02):
    runs = [{"ratio": r, "before": {"dm_final": 0.5, "dm_final_ci": [0.5 - h, 0.5 + h], "acc": 0.4},
             "after": {"dm_final": 0.5 + g, "dm_final_ci": [0.5 + g - h, 0.5 + g + h], "acc": last_acc,
                       "acc_ci": [last_acc - h, last_acc + h]}} for r, g in zip((0.25, 0.5), gains)]
    return {"model": "m", "task": "t", "runs": runs, "dense": {"acc": 0.8, "acc_ci": [0.78, 0.82]}}


def test_recovery_bounded_three_ways():
    f = F.recovery_bounded
    assert f(R(recovery=[_recovery([0.3, 0.2], 0.6)])).status == HOLDS
    assert f(R(recovery=[_recovery([0.3, -0.2], 0.6)])).status == FAILS          # one ratio loses DM
    assert f(R(recovery=[_recovery([0.3, 0.2], 0.9)])).status == FAILS           # tuned above dense
    assert f(R(recovery=[_recovery([0.3, 0.01], 0.6)])).status == UNRESOLVED
    assert f(R()).status == NODATA


def _controls(ip, one, rnd, h=0.02):
    ci = lambda a: [a - h, a + h]                                                            # noqa: E731
    return {"model": "m", "task": "t", "methods": {
        "ip": {"steps": [{"ratio": 0.25, "acc": ip, "acc_ci": ci(ip)}]},
        "shortgpt_oneshot": {"steps": [{"ratio": 0.25, "acc": one, "acc_ci": ci(one)}]},
        "random": {"steps": [{"ratio": 0.25, "acc": float(np.mean(rnd)), "acc_std": float(np.std(rnd, ddof=1)) if len(rnd) > 1 else 0.0,
                              "seeds": list(range(len(rnd))), "runs": [{"acc": a, "acc_ci": ci(a)} for a in rnd]}]}}}


def test_beats_random_three_ways():
    f = F.beats_random
    assert f(R(controls=[_controls(0.6, 0.5, [0.45, 0.46, 0.44])])).status == HOLDS
    assert f(R(controls=[_controls(0.3, 0.5, [0.45, 0.46, 0.44])])).status == FAILS
    assert f(R(controls=[_controls(0.46, 0.5, [0.45, 0.46, 0.44])])).status == UNRESOLVED
    assert f(R(controls=[_controls(0.6, 0.5, [0.3, 0.6, 0.45])])).status == UNRESOLVED   # seeds disagree
    res = f(R(controls=[_controls(0.6, 0.5, [0.45])]))
    assert res.status == UNRESOLVED and "one seed" in res.evidence
    assert f(R()).status == NODATA


def test_ip_vs_oneshot_three_ways():
    f = F.ip_vs_oneshot
    rnd = [0.45, 0.46]
    assert f(R(controls=[_controls(0.6, 0.5, rnd)])).status == HOLDS
    assert f(R(controls=[_controls(0.4, 0.5, rnd)])).status == FAILS
    assert f(R(controls=[_controls(0.49, 0.5, rnd)])).status == UNRESOLVED
    assert f(R()).status == NODATA


def test_joint_verdict_over_models():
    j = F.joint_verdict
    assert j({"a": HOLDS, "b": HOLDS})[0] == HOLDS and j({"a": FAILS, "b": FAILS})[0] == FAILS
    assert j({"a": HOLDS, "b": FAILS})[0] == F.DIFFERS                   # the finding: it depends on the family
    assert j({"a": HOLDS, "b": UNRESOLVED})[0] == UNRESOLVED
    st, note = j({"a": HOLDS, "b": NODATA})                               # one model is no joint evidence
    assert st == NODATA and "only a" in note
    assert j({"a": NODATA, "b": NODATA}, pooled=HOLDS) == (HOLDS, "pooled over models (no per-model data)")
    assert j({"a": NODATA, "b": NODATA})[0] == NODATA


def test_claim_table_splits_by_model(monkeypatch):
    """The transition exists on one model (TP 9 [7, 11]) and not on the other (no TP): per model holds / does not
    hold, jointly "differs by model"; pooled, one does-not-hold decides (does not hold). The correlation, pooled over
    points and naming no model, keeps its pooled verdict."""
    monkeypatch.setattr(F, "CHECKS", [F.transition_exists, F.correlation_claim])
    a = {**_analysis(9, [7, 11]), "model": "m1"}
    b = {**_analysis(None, [None, None]), "model": "m2"}
    t = F.claim_table(R(analysis=[a, b]))
    assert t["models"] == ["m1", "m2"]
    row, corr = t["rows"]
    assert row["per_model"]["m1"]["status"] == HOLDS and row["per_model"]["m2"]["status"] == FAILS
    assert row["joint"] == F.DIFFERS and row["pooled"]["status"] == FAILS
    assert corr["joint"] == corr["pooled"]["status"] == NODATA
    md = F.claim_table_md(t)
    assert md.splitlines()[0] == "| claim | m1 | m2 | joint |" and "**differs by model**" in md


def test_referee_questions_combine_each_cases_answer_per_model_and_jointly():
    """Each restore / readout case's answer (decided by its own interval) is one comparison: a case without data is
    left out; per model one does-not-hold decides; across models the joint rule applies. Only asked of reports that
    hold such runs."""
    def restore(model, task, **st):
        return {"model": model, "task": task,
                "answers": [{"key": k, "question": k, "status": v, "evidence": f"{k} {v}"} for k, v in st.items()]}
    runs = [restore("m1", "a", magnitude=FAILS, phase=HOLDS, silent=NODATA),
            restore("m1", "b", magnitude=FAILS, phase=UNRESOLVED, silent=UNRESOLVED),
            restore("m2", "a", magnitude=FAILS, phase=HOLDS, silent=FAILS)]
    assert len(F.findings(R())) == len(F.CHECKS)                            # no restore / readout runs: not asked
    t = F.claim_table(R(restore=runs, readout=[]))
    rows = {r["claim"].split()[0] + " " + r["claim"].split()[1]: r for r in t["rows"][len(F.CHECKS):]}
    mag, phase, silent = rows["Magnitude alone"], rows["Removing the"], rows["Restoring the"]
    assert mag["joint"] == FAILS and mag["per_model"]["m1"]["status"] == FAILS
    assert phase["per_model"]["m1"]["status"] == UNRESOLVED and phase["per_model"]["m2"]["status"] == HOLDS
    assert phase["joint"] == UNRESOLVED and "1 of 2 comparisons hold" in phase["per_model"]["m1"]["evidence"]
    assert silent["per_model"]["m1"]["status"] == UNRESOLVED and "m1/a" not in silent["per_model"]["m1"]["evidence"]
    assert silent["joint"] == UNRESOLVED and silent["pooled"]["status"] == FAILS
    assert rows["Another question's"]["joint"] == NODATA                    # no case answered it
    # readout answers of runs made before the answers had keys are matched by their question
    old = {"model": "m1", "task": "a", "answers": [{"question": "the tuned lens locates the transition earlier than "
                                                    "the logit lens", "status": HOLDS, "evidence": "e"}]}
    f = F.findings(R(readout=[old]))[-1]
    assert f.status == HOLDS and f.claim.startswith("The tuned lens")


def test_causal_cases_at_chance_are_left_out_of_the_referee_rows():
    """A restore / readout case whose dense model decides nothing on its questions (its own recorded levels: the
    OpenBookQA cases, always-A 0.275) answers nothing about why pruning collapses: its answers leave every row, with
    every result on the same questions; a case above chance stays, and an old case without levels is kept."""
    lv = {"uniform": 0.25, "constant": 0.275, "constant_option": 0, "floor": 0.275}
    def case(kind, task, acc, levels=lv, status=FAILS):
        r = {"model": "m1", "task": task, "n_samples": 200, "split": "test", "format": "cloze",
             "answers": [{"key": "control", "question": "control", "status": status, "evidence": task}]}
        if levels:
            r["chance_levels"] = levels
        if kind == "restore":
            r["dense"] = {"acc": acc}
        else:
            r["readouts"] = {"logit_lens": {"acc": [0.25, acc]}}
        return r
    obqa = case("restore", "obqa", 0.325)                        # Wilson lower bound 0.264 < 0.275: at chance
    arc = case("restore", "arc", 0.60, status=HOLDS)
    old = case("restore", "old", 0.30, levels=None, status=HOLDS)
    ro = case("readout", "obqa", 0.325)
    gone = F.at_chance(R(restore=[obqa, arc, old], readout=[ro]))
    assert [(k, r["task"]) for k, _, r in gone] == [("restore", "obqa"), ("readout", "obqa")]
    assert "0.275" in gone[0][1]
    t = F.claim_table(R(restore=[obqa, arc, old], readout=[ro]))
    row = next(r for r in t["rows"] if r["claim"].startswith("Another question's"))
    m1 = row["per_model"]["m1"]
    assert m1["status"] == HOLDS and "obqa" not in m1["evidence"] and "2 of 2 comparisons hold" in m1["evidence"]
    assert {x["task"] for x in t["left_out"]} == {"obqa"}
    # a readout trained on seeded halves reads other questions (the evaluation half of a 2N sample): at chance, it
    # leaves only itself out, not the restore case of the same task and n
    half = {**case("readout", "arc", 0.30), "train_source": "validation split, seeded halves"}
    t = F.claim_table(R(restore=[arc], readout=[half]))
    row = next(r for r in t["rows"] if r["claim"].startswith("Another question's"))
    assert row["per_model"]["m1"]["status"] == HOLDS and [x["task"] for x in t["left_out"]] == ["arc"]
    assert "1 of 1 comparisons hold" in row["per_model"]["m1"]["evidence"]
    # the same case above chance counts against the claim
    row = next(r for r in F.claim_table(R(restore=[case("restore", "obqa", 0.45), arc]))["rows"]
               if r["claim"].startswith("Another question's"))
    assert row["per_model"]["m1"]["status"] == FAILS


def test_runs_at_chance_are_left_out_of_every_claim_and_named(tmp_path, monkeypatch):
    """A model answering "yes" to every BoolQ question has no transition to find: its analysis (flagged by analyze,
    or judged from an older run's samples.csv) and its trajectory are left out with every result on the same
    questions (a random-seed trajectory that records no gold shares, a controls run), and the table says why."""
    import json
    lv = {"uniform": 0.5, "constant": 0.608, "constant_option": 1, "floor": 0.608}
    a = {**_analysis(9, [7, 11]), "acc": 0.9, "n_samples": 100,
         "chance_levels": {"uniform": 0.25, "constant": 0.3, "constant_option": 0, "floor": 0.3}}
    b = {**_analysis(None, [None, None]), "model": "m2", "task": "boolq", "acc": 0.608, "n_samples": 400,
         "chance_levels": lv}
    # an older run without the levels: judged from its files (gold 62% option 1, accuracy 0.60)
    pd.DataFrame({"sample_id": range(100), "depth": 0, "gold": [1] * 62 + [0] * 38, "n_options": 2}).to_csv(
        tmp_path / "samples.csv", index=False)
    (tmp_path / "analysis.json").write_text(json.dumps({"acc": 0.60, "acc_ci": [0.5, 0.7]}))
    c = {**_analysis(None, [None, None]), "task": "old", "_dir": str(tmp_path)}

    def traj(model, task, accs, dense, lab=None, method="iterative"):
        st = [{"removed": list(range(i + 1)), "ratio": (i + 1) / 18, "acc": x, "acc_ci": [x - 0.02, x + 0.02]}
              for i, x in enumerate(accs)]
        d = {"acc": dense, "acc_ci": [dense - 0.02, dense + 0.02], "removed": [], "transition_point": 9,
             "tp_ci": [7, 11]}
        if lab:
            d["label_distribution"] = lab
        return {"model": model, "task": task, "num_layers": 18, "n_samples": 200, "split": "validation",
                "chance": 0.5, "params": {"method": method, "format": "cloze"}, "dense": d, "steps": st}

    t = traj("m2", "boolq", [0.64, 0.64, 0.64], 0.64, [0.36, 0.64])
    seed = traj("m2", "boolq", [0.64, 0.6, 0.4], 0.64, method="random")       # no gold shares of its own
    ok = traj("m1", "piqa", [0.8, 0.79, 0.55], 0.8, [0.5, 0.5])
    ctl = {"model": "m2", "task": "boolq", "n_samples": 200, "split": "validation", "format": "cloze"}
    r = R(analysis=[a, b, c], trajectory=[t, seed, ok], controls=[ctl])
    gone = F.at_chance(r)
    assert len(gone) == 3 and [(k, x is y) for (k, _, x), y in zip(gone, (b, c, t))] == [
        ("analysis", True), ("analysis", True), ("trajectory", True)]
    assert "0.608 (always option #2 (B))" in gone[0][1] and "0.620 (always option #2 (B))" in gone[1][1]
    kept = F._above_chance_only(r)
    assert kept["trajectory"] == [ok] and kept["controls"] == [] and kept["analysis"] == [a]
    # without them the transition claim rests on `a`: holds (with b and c: does not hold); the collapse claim reads
    # the one trajectory above chance
    monkeypatch.setattr(F, "CHECKS", [F.transition_exists, F.sudden_collapse])
    assert F.transition_exists(r).status == FAILS and "boolq" in F.sudden_collapse(r).evidence
    exists, collapse = F.findings(r)
    assert exists.status == HOLDS and "boolq" not in collapse.evidence and "m1/piqa" in collapse.evidence
    tab = F.claim_table(r)
    assert [x["task"] for x in tab["left_out"]] == ["boolq", "old", "boolq"]
    assert "Left out as at chance" in F.claim_table_md(tab) and "m2/boolq (n = 200" in F.claim_table_md(tab)
