"""Transition estimators (mean-DM TP, decision depth by Kaplan-Meier, accuracy change-point): exact hand cases, CI
coverage of a planted transition at n=100, and "not identified" when nothing is planted. Pure numpy, fast."""
import time

import numpy as np
import pytest
from scipy.stats import norm

from prunelens.metrics import (IDENTIFIED, NOT_IDENTIFIED, decision_margin, identify, sustained_crossing,
                               transition_estimators, transition_point, transition_point_bootstrap, transition_points)
from prunelens.metrics.changepoint import half_rise, mean_shift
from prunelens.metrics.decision_depth import decision_depths, default_min_run, km_fraction_decided, median_depth

KEYS = ("mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint")


# ---- hand cases ---------------------------------------------------------------------------------------------------

def test_decision_depths_runs_and_censoring():
    pred = np.array([[0, 1, 1, 1], [1, 1, 1, 1], [0, 1, 0, 1], [2, 2, 0, 0]])
    t, e = decision_depths(pred, pred[:, -1], min_run=2)
    assert t.tolist() == [1, 0, 2, 2] and e.tolist() == [True, True, False, True]   # row 2: run 1 < 2, censored at D-2
    gold = np.array([1, 0, 1, 0])                                                  # row 1 is wrong at the end
    t, e = decision_depths(pred, gold, min_run=2)
    assert t.tolist() == [1, 2, 2, 2] and e.tolist() == [True, False, False, True]
    with pytest.raises(ValueError):
        decision_depths(pred, gold, min_run=4)                                   # no depth left to observe
    assert default_min_run(18) == 2 and default_min_run(30) == 3 and default_min_run(4) == 2


def test_kaplan_meier_hand_values():
    # all censoring at the end: KM = fraction of all N decided
    f = km_fraction_decided([1, 0, 2, 2], [True, True, False, True], 3)
    assert np.allclose(f, [0.25, 0.5, 0.75])
    # textbook product limit with a censoring in the middle: S = 3/4, then 3/4 * 2/3, then 0
    f = km_fraction_decided([1, 2, 2, 3], [True, False, True, True], 4)
    assert np.allclose(f, [0.0, 0.25, 0.5, 1.0])
    # weights = multiplicities: a resample that takes question 0 twice and drops question 3
    w = np.array([[2.0, 1.0, 1.0, 0.0]])
    assert np.allclose(km_fraction_decided([1, 2, 2, 3], [True, False, True, True], 4, w)[0],
                       km_fraction_decided([1, 1, 2, 2], [True, True, False, True], 4))


def test_median_and_crossing():
    p, x = median_depth(np.array([0.2, 0.4, 0.6]))
    assert p == 2 and x == pytest.approx(1.5)
    p, x = median_depth(np.array([0.1, 0.3]))
    assert p == 2 and np.isinf(x)                                                 # never half decided: none
    p, x = median_depth(np.array([[0.5, 0.7], [0.0, 0.5]]))
    assert p.tolist() == [0, 1] and x.tolist() == [0.0, pytest.approx(1.0)]


def test_sustained_crossing_is_the_transition_point():
    p, x = sustained_crossing(np.array([[1.0, -1.0, 1.0, 3.0]]))                  # a dip before the last crossing
    assert p[0] == 2 and x[0] == pytest.approx(1.5)
    rng = np.random.default_rng(0)
    m = rng.normal(0.3, 1.0, size=(500, 9))
    p, x = sustained_crossing(m, 0.2)
    want = [9 if (t := transition_point(r, 0.2)) is None else t for r in m]
    assert p.tolist() == want and transition_points(m, 0.2).tolist() == want
    fin = p < 9
    assert np.all((x[fin] >= p[fin] - 1) & (x[fin] <= p[fin])) and np.all(np.isinf(x[~fin]))


def test_mean_shift_and_half_rise():
    assert mean_shift(np.array([0, 0, 0, 1, 1, 1.0])) == (3, 1.0)
    assert mean_shift(np.full(6, 0.4))[0] == 6                                    # exactly flat: no change-point
    assert mean_shift(np.array([1, 1, 0, 0.0]))[0] == 4                           # a fall is not a rise
    p, x, h, s = half_rise(np.array([[0, 0, 0.2, 0.8, 1, 1.0]]))
    assert (p[0], s[0]) == (3, 3) and x[0] == pytest.approx(2.5) and h[0] == pytest.approx(0.8667, abs=1e-4)


def test_mean_shift_is_the_brute_force_least_squares_split():
    """The closed form (CUSUM) against the definition: for every split s, fit the two segment means and sum the
    squared residuals; the best split is the one with the smallest RSS (ties: the shallowest), a rise only."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        d = int(rng.integers(3, 32))
        a = np.round(rng.random(d) * rng.choice([0.1, 1.0]), 3)          # rounding makes exact ties happen too
        rss = [((a[:s] - a[:s].mean()) ** 2).sum() + ((a[s:] - a[s:].mean()) ** 2).sum() for s in range(1, d)]
        flat = ((a - a.mean()) ** 2).sum()
        s_best = 1 + int(np.argmin(np.round(rss, 10)))
        rise = a[s_best:].mean() > a[:s_best].mean() and np.round(flat - min(rss), 10) > 0
        split, height = mean_shift(a)
        assert split == (s_best if rise else d), (a, split, s_best)
        if rise:
            assert height == pytest.approx(a[s_best:].mean() - a[:s_best].mean())


def test_identify_rule_on_the_ci():
    assert identify([10, 14], 18)[0] == IDENTIFIED                                # width 4 <= 18/4
    for ci, why in (([None, None], "most resamples"), ([10, None], "none"), ([0, 4], "depth 0"),
                    ([15, 18], "last depth"), ([3, 12], "width 9")):
        v, w = identify(ci, 18)
        assert v == NOT_IDENTIFIED and why in w, (ci, w)


def test_estimators_respect_padding_and_match_the_tp_bootstrap():
    s, g, k = simulate(np.random.default_rng(5), n=60)
    e = transition_estimators(s, g, k, n_boot=200, seed=3)
    big = np.where(np.isnan(s), 1e9, s)                                           # padding must never win
    assert transition_estimators(big, g, k, n_boot=200, seed=3) == e
    dm = decision_margin(s, g, k)
    tb = transition_point_bootstrap(dm, 0.0, 200, seed=3)
    assert e["mean_dm_tp"]["point"] == transition_point(dm.mean(0)) and e["mean_dm_tp"]["ci"] == tb["tp_ci"]
    assert e["mean_dm_tp"]["none_frac"] == tb["tp_none_frac"]
    for key in KEYS:
        b = e[key]
        if b["point"] is not None:
            assert b["point"] - 1 <= b["crossing"] <= b["point"]
    km = e["decision_depth_gold"]
    assert len(km["curve"]) == km["last_depth"] + 1 == 30 - default_min_run(29) + 1
    assert all(lo <= c <= hi for lo, c, hi in zip(*km["curve_ci"][:1], km["curve"], km["curve_ci"][1]))


# ---- simulation: a planted transition ---------------------------------------------------------------------------

def simulate(rng, n=100, L=29, mu=14.7, sigma=6.0, a=3.0, noise=0.5, kind="planted"):
    """Score tensors [n, L+1, 4] with 2..4 options (NaN padding). Question i has a latent decision depth
    tau_i ~ N(mu, sigma^2) and decides at t_i = ceil(tau_i), the first whole depth at or after it: before t_i a fixed
    distractor leads the gold option by a, from t_i on the gold option leads it by a (the other options sit 3a below;
    noise sd 0.5 makes a flip of the leader a ~1e-5 event). kind="silent": never decided (the distractor leads at
    every depth, a default-option model); kind="noise": no signal at all (every option pure noise)."""
    D, kmax = L + 1, 4
    k = rng.integers(2, kmax + 1, size=n)
    gold = rng.integers(0, k)
    dis = (gold + 1 + rng.integers(0, k - 1)) % k
    t = np.ceil(mu + sigma * rng.standard_normal(n)) if kind == "planted" else np.full(n, D + 1.0)
    dec = np.arange(D)[None, :] >= t[:, None]
    s = noise * rng.standard_normal((n, D, kmax))
    if kind != "noise":
        r = np.arange(n)
        s -= 3 * a
        s[r, :, gold] += 3 * a + a * dec
        s[r, :, dis] += 3 * a + a * ~dec
    s[np.broadcast_to(np.arange(kmax)[None, None, :] >= k[:, None, None], s.shape)] = np.nan
    return s, gold, k


def population_targets(L=29, mu=14.7, sigma=6.0) -> dict:
    """Each estimator's crossing on the noise-free population curves of `simulate` (the known answer). With
    F(l) = P(t <= l) = Phi((l - mu) / sigma): mean DM = a (2F - 1), accuracy = F, gold rule decided = F,
    prediction rule decided = F + P(t > L) (a never-decided question keeps the distractor from depth 0)."""
    F = norm.cdf((np.arange(L + 1) - mu) / sigma)
    c = L - default_min_run(L) + 1
    return {"mean_dm_tp": float(sustained_crossing((2 * F - 1)[None])[1][0]),
            "decision_depth_gold": float(median_depth(F[:c + 1])[1]),
            "decision_depth_pred": float(median_depth((F + 1 - F[-1])[:c + 1])[1]),
            "acc_changepoint": float(half_rise(F[None])[1][0])}


# (L, planted mean depth, sd of the per-question depths): the first is the set-up the estimators were built on; the
# others are both built-in models' depths (Gemma L = 18, SmolLM2 L = 30) with the transition mid-network and late,
# where the ends of the network and the censoring depth are closest to the interval.
SETUPS = [(29, 14.7, 6.0), (18, 9.3, 3.7), (18, 13.6, 3.7), (30, 23.4, 6.2)]


@pytest.mark.parametrize("L,mu,sigma", SETUPS)
def test_planted_transition_ci_coverage_at_n100(L, mu, sigma):
    """Coverage of every estimator's 95% crossing CI over 250 simulations of n=100 questions (fixed seeds).

    Why the band [0.90, 0.99] cannot be passed by luck: with true coverage 0.95 the number of misses is
    Binomial(250, 0.05), mean 12.5, sd 3.4; the band allows 3..25 misses, 2.8 sd below and 3.6 sd above the mean, so a
    calibrated estimator fails with probability ~0.2% per estimator. An under-covering CI (true 0.85, 37.5 misses
    expected) passes with probability ~1.5%; one that always covers (a trivially wide CI, 0 misses) fails, as does
    one at 0.999 with probability ~99%. The whole-depth CIs (`ci`, each crossing bound rounded up to its whole depth)
    are checked too: rounding can only add coverage, so they must reach 0.95 (they sit at 0.97-1.00; the verdict's
    rule is stated on them in whole depths, which makes it conservative, never lenient).
    """
    target = population_targets(L, mu, sigma)
    # The known answer is each rule's value on the noise-free population curves. Mid-network all four equal the
    # planted depth; late, P(t > L) > 0 moves the prediction rule's and the truncated accuracy curve's (the mean-DM
    # and gold-rule crossings stay at the planted depth: F(mu) = 1/2 whatever the truncation).
    exact = KEYS if mu < 0.6 * L else ("mean_dm_tp", "decision_depth_gold")
    assert all(abs(target[key] - mu) < 0.15 for key in exact), target
    rng = np.random.default_rng([20261202, L, int(10 * mu)])
    n_sim = 250
    hit = {k: 0 for k in KEYS}
    hit_whole = {k: 0 for k in KEYS}
    ident = {k: 0 for k in KEYS}
    for i in range(n_sim):
        s, g, k = simulate(rng, L=L, mu=mu, sigma=sigma)
        e = transition_estimators(s, g, k, n_boot=400, seed=i)
        for key in KEYS:
            lo, hi = e[key]["crossing_ci"]
            hit[key] += lo is not None and hi is not None and lo <= target[key] <= hi
            wl, wh = e[key]["ci"]
            whole = int(np.floor(target[key])) + 1                              # the whole depth of the rule
            hit_whole[key] += wl is not None and wh is not None and wl <= whole <= wh
            ident[key] += e[key]["verdict"] == IDENTIFIED
    cover = {k: v / n_sim for k, v in hit.items()}
    assert all(0.90 <= c <= 0.99 for c in cover.values()), cover
    assert all(v / n_sim >= 0.95 for v in hit_whole.values()), hit_whole
    if mu < 0.6 * L:                                   # mid-network: identified, and it says so
        assert all(v / n_sim >= 0.95 for v in ident.values()), ident


@pytest.mark.parametrize("kind", ["silent", "noise"])
def test_nothing_planted_is_not_identified(kind):
    rng = np.random.default_rng(7)
    for i in range(40):
        s, g, k = simulate(rng, kind=kind)
        e = transition_estimators(s, g, k, n_boot=400, seed=i)
        assert all(e[key]["verdict"] == NOT_IDENTIFIED for key in KEYS), {key: e[key]["why"] for key in KEYS}


def test_decided_from_the_start_is_not_a_transition():
    s, g, k = simulate(np.random.default_rng(1), mu=-50.0)                      # gold leads at every depth
    e = transition_estimators(s, g, k, n_boot=200)
    assert [e[key]["point"] for key in KEYS] == [0, 0, 0, None]                  # flat accuracy 1: no rise
    assert all(e[key]["verdict"] == NOT_IDENTIFIED for key in KEYS)


def test_vectorised_speed():
    s, g, k = simulate(np.random.default_rng(2), n=400, L=30)
    t0 = time.perf_counter()
    transition_estimators(s, g, k, n_boot=1000)
    assert time.perf_counter() - t0 < 5.0                                         # ~0.2 s on an idle core


def test_decision_depth_at_the_censoring_depth_is_not_identified():
    """A median decision depth whose CI reaches c = L - min_run + 1 (the deepest observable decision) cannot be told
    from a decision beyond it: not identified, as a TP whose CI reaches L."""
    from prunelens.metrics.estimators import identify
    assert identify([26, 27], 30, last=28)[0] == IDENTIFIED
    v, why = identify([27, 28], 30, last=28)
    assert v != IDENTIFIED and "28" in why
    assert identify([27, 28], 30)[0] == IDENTIFIED                              # without `last`: only L counts


def test_paired_depth_difference_is_paired_and_antisymmetric():
    from prunelens.metrics.estimators import paired_depth_difference, transition_estimators
    rng = np.random.default_rng(3)
    N, D, K = 120, 10, 4
    gold, n_opt = rng.integers(0, K, N), np.full(N, K)

    def planted(t):
        s = rng.normal(size=(N, D, K))
        after = np.arange(D)[None] >= t[:, None]                               # [N, D]
        return s + 20.0 * after[:, :, None] * np.eye(K)[gold][:, None, :]
    t = rng.integers(2, 6, N)
    a, b = planted(t), planted(t + 2)
    same = paired_depth_difference(a, a, gold, n_opt, n_boot=200)
    assert same["point"] == 0 and same["ci"] == [0, 0]
    ab, ba = (paired_depth_difference(x, y, gold, n_opt, n_boot=200) for x, y in ((a, b), (b, a)))
    assert ab["point"] == -ba["point"] and ab["ci"] == [-ba["ci"][1], -ba["ci"][0]]
    # the point is the difference of the two medians' crossings, as transition_estimators reports them
    ea, eb = (transition_estimators(x, gold, n_opt, n_boot=10)["decision_depth_pred"]["crossing"] for x in (a, b))
    assert abs(ab["point"] - (ea - eb)) < 1e-3
    # each question is decided 2 depths later in b: the paired CI lies below 0, around -2
    assert ab["ci"][1] < 0 and ab["ci"][0] >= -3
