"""Critical ratio rule and Pearson r against scipy, from trajectory dicts in the pruning schema."""
import numpy as np
import pytest
from scipy import stats

from prunelens.analyses.correlation import correlate, critical_ratio, pearson, point_from_trajectory
from prunelens.analyses.run import run_correlation
from prunelens.results import write_json


def test_critical_ratio():
    r = [0.1, 0.2, 0.3, 0.4]
    # threshold = 0.25 + 0.5 * (0.65 - 0.25) = 0.45
    assert critical_ratio(r, [0.6, 0.5, 0.44, 0.2], 0.65, 0.25) == 0.3
    assert critical_ratio(r, [0.6, 0.5, 0.46, 0.45], 0.65, 0.25) is None         # never strictly below
    assert critical_ratio(r, [0.6, 0.5, 0.46, 0.45], 0.65, 0.25, gamma=0.9) == 0.1
    assert critical_ratio(r[::-1], [0.2, 0.44, 0.5, 0.6], 0.65, 0.25) == 0.3      # order does not matter


def test_pearson_matches_scipy():
    x, y = np.random.default_rng(1).normal(size=(2, 9))
    r = pearson(x, y)
    ref = stats.pearsonr(x, y)
    assert r["r"] == pytest.approx(ref[0], abs=1e-12) and r["p"] == pytest.approx(ref[1], abs=1e-12)
    assert pearson([1, 2], [3, 4])["r"] is None                                   # n < 3: undefined, not 1.0


def traj(task, tp, accs, L=10, dense=0.8):
    return {"model": "m", "task": task, "method": "ip", "num_layers": L, "chance": 0.25,
            "dense": {"acc": dense, "transition_point": tp, "num_layers": L},
            "steps": [{"removed": list(range(k + 1)), "ratio": (k + 1) / L, "acc": a, "dm_final": 0.0}
                      for k, a in enumerate(accs)]}


def test_points_and_correlation(tmp_path):
    trs = [traj("t1", 2, [0.8, 0.7, 0.6, 0.3]), traj("t2", 5, [0.7, 0.3, 0.2, 0.2]),
           traj("t3", 8, [0.3, 0.2, 0.2, 0.2]), traj("t4", 4, [0.8, 0.8, 0.8, 0.8])]
    pts = [point_from_trajectory(t) for t in trs]
    assert [p["critical_ratio"] for p in pts] == [0.4, 0.2, 0.1, None]
    assert pts[3]["censored"]
    res = correlate(pts)
    ref = stats.pearsonr([0.2, 0.5, 0.8], [0.4, 0.2, 0.1])
    assert res["n"] == 3 and res["r"] == pytest.approx(ref[0]) and res["p"] == pytest.approx(ref[1])
    assert len(res["dropped"]) == 1 and res["min_significant_r"] > 0.99
    assert pts[0]["tp_ci_relative"] is None                       # dense measured without a TP CI
    trs[1]["dense"]["tp_ci"] = [3, None]                           # upper tail: no TP
    assert point_from_trajectory(trs[1])["tp_ci_relative"] == [0.3, None]
    for i, t in enumerate(trs):
        write_json(tmp_path / f"run{i}" / "trajectory.json", t)
    out = run_correlation(tmp_path / "corr", [tmp_path])
    assert out["r"] == pytest.approx(ref[0]) and (tmp_path / "corr" / "correlation.png").is_file()
    # per-depth acc arrays in steps (the pruning schema allows them): the last entry is the task accuracy
    t = traj("t5", 3, [0.8, 0.2])
    for s in t["steps"]:
        s["acc"] = [0.1, 0.2, s["acc"]]
    assert point_from_trajectory(t)["critical_ratio"] == 0.2


def test_fisher_ci_and_correlation_by_estimator(tmp_path):
    """Fisher-z CI of r against the textbook formula; each estimator's depth in place of the TP gives the Pearson r
    of its own points (scipy), and counts how many of them were identified."""
    x, y = np.random.default_rng(2).normal(size=(2, 12))
    r = pearson(x, y)
    z, se, q = np.arctanh(r["r"]), 1 / np.sqrt(12 - 3), stats.norm.ppf(0.975)
    assert r["r_ci"] == pytest.approx([np.tanh(z - q * se), np.tanh(z + q * se)])
    assert pearson([1, 2, 3], [1, 3, 2])["r_ci"] is None                        # n = 3: no Fisher interval
    trs = [traj("t1", 2, [0.8, 0.7, 0.6, 0.3]), traj("t2", 5, [0.7, 0.3, 0.2, 0.2]),
           traj("t3", 8, [0.3, 0.2, 0.2, 0.2]), traj("t4", 4, [0.8, 0.7, 0.3, 0.2]), traj("t5", None, [0.6, 0.2])]
    depths = [3, 6, 7, 5, 9]                                                     # decision depth; t5 has one, no TP
    for t, dd in zip(trs, depths):
        t["dense"]["estimators"] = {"decision_depth_pred": {"point": dd, "verdict": "identified" if dd < 7 else
                                                            "not identified at this n"},
                                    "acc_changepoint": {"point": None, "verdict": "not identified at this n"}}
    res = correlate([point_from_trajectory(t) for t in trs])
    crit = [0.4, 0.2, 0.1, 0.3, 0.2]
    ref = stats.pearsonr([d / 10 for d in depths], crit)
    dd = res["by_estimator"]["decision_depth_pred"]
    assert dd["n"] == 5 and dd["r"] == pytest.approx(ref[0]) and dd["n_identified"] == 3
    assert res["by_estimator"]["acc_changepoint"]["n"] == 0 and res["by_estimator"]["acc_changepoint"]["r"] is None
    assert res["n"] == 4                                                         # the TP's own points: t5 has none
    # the estimator's CI goes with its point, relative to L; the figure and the report draw them
    trs[0]["dense"]["estimators"]["decision_depth_pred"]["ci"] = [2, None]
    assert point_from_trajectory(trs[0])["estimators"]["decision_depth_pred"]["ci_relative"] == [0.2, None]
    from prunelens.analyses.figures import correlation_by_estimator
    res = correlate([point_from_trajectory(t) for t in trs])
    assert correlation_by_estimator(res, tmp_path / "e.png").stat().st_size > 0


def test_a_point_at_chance_is_dropped_with_why():
    """A model that answers one option everywhere (Gemma on BoolQ: "yes" = 0.64 of the gold) has a "critical ratio"
    made of noise: the point is dropped from Figure 8 and the estimators' correlations, and says why."""
    trs = [traj("t1", 2, [0.8, 0.7, 0.6, 0.3]), traj("t2", 5, [0.7, 0.3, 0.2, 0.2]),
           traj("t3", 8, [0.3, 0.2, 0.2, 0.2]), traj("yes", 4, [0.6, 0.3, 0.2, 0.2], dense=0.64)]
    for t in trs:
        t["n_samples"] = 200
        t["dense"]["label_distribution"] = [0.25] * 4
    trs[3]["dense"]["label_distribution"] = [0.36, 0.64]
    pts = [point_from_trajectory(t) for t in trs]
    assert [p["at_chance"] for p in pts] == [False, False, False, True]
    assert pts[3]["constant_chance"] == 0.64 and "0.640 (always option #2 (B))" in pts[3]["at_chance_why"]
    # without the gold shares nothing is known above the uniform level (kept), below it the point is at chance
    t = traj("old", 4, [0.6, 0.3], dense=0.64)
    t["n_samples"] = 200
    assert point_from_trajectory(t)["at_chance"] is None
    t["dense"]["acc"] = 0.30
    assert point_from_trajectory(t)["at_chance"] is True
    res = correlate(pts)
    assert res["n"] == 3 and [d["task"] for d in res["dropped"]] == ["yes"]
    assert res["dropped"][0]["why"].startswith("at chance: accuracy 0.640")
    # balanced gold: the same accuracy is far above chance, and the point counts
    trs[3]["dense"]["label_distribution"] = [0.5, 0.5]
    p = point_from_trajectory(trs[3])
    assert p["at_chance"] is False and correlate([*pts[:3], p])["n"] == 4


def test_one_point_per_pair_does_not_depend_on_input_order():
    """Two runs of one (model, task): the one with the transition estimators is kept, whichever comes first, and the
    figure's points are exactly those r rests on."""
    a, b = traj("t1", 2, [0.8, 0.7, 0.6, 0.3]), traj("t1", 5, [0.7, 0.3, 0.2, 0.2])   # same model and task
    b["dense"]["estimators"] = {"decision_depth_pred": {"point": 6, "verdict": "identified"}}
    others = [traj("t2", 5, [0.7, 0.3, 0.2, 0.2]), traj("t3", 8, [0.3, 0.2, 0.2, 0.2])]
    pts = [point_from_trajectory(t, source=f"s{i}") for i, t in enumerate([a, b, *others])]
    fwd, rev = correlate(pts), correlate(pts[::-1])
    assert fwd["r"] == rev["r"] is not None
    assert set(fwd["used_sources"]) == set(rev["used_sources"]) and "s1" in fwd["used_sources"]
    assert "s0" not in fwd["used_sources"] and fwd["by_estimator"] == rev["by_estimator"]


def test_a_running_trajectory_is_not_censored():
    t = {**traj("t1", 2, [0.8, 0.7]), "status": "running"}
    p = point_from_trajectory(t)
    assert p["critical_ratio"] is None and not p["censored"] and p["running"]
    assert "still running" in correlate([p])["dropped"][0]["why"]
    # a running run of the pair with more questions does not hide a finished one
    done = {**point_from_trajectory(traj("t1", 2, [0.8, 0.3])), "n_samples": 64, "source": "finished"}
    res = correlate([{**p, "n_samples": 200, "source": "running"}, done, point_from_trajectory(traj("t2", 5, [0.3])),
                     point_from_trajectory(traj("t3", 8, [0.8, 0.2]))])
    assert res["n"] == 3 and "finished" in res["used_sources"] and "running" not in res["used_sources"]
    t["status"] = "complete"                                       # the same steps, finished: censored
    assert point_from_trajectory(t)["censored"]
    t = {**traj("t2", 2, [0.8, 0.3]), "status": "running"}         # a restart may still replace the crossing step
    assert point_from_trajectory(t)["critical_ratio"] is None
    t["status"] = "complete"
    assert point_from_trajectory(t)["critical_ratio"] == 0.2
