"""Unit tests for prunelens.metrics on hand-made score tensors; every expected value is computed independently."""
import json
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from prunelens.metrics import (accuracy_by_depth, bootstrap_mean_ci, decision_margin, depth_summary, entropy,
                               kl_divergence, label_distribution, option_frequency, phases, predictions,
                               score_summary, top_share, transition_point, transition_point_bootstrap)
from prunelens.metrics import bootstrap as bootstrap_mod

NAN = float("nan")


def ragged_scores(seed=0, n=40, d=4, kmax=5, pad=NAN):
    """Random scores [n, d, kmax] with K_i in 3..kmax, padded with `pad`, plus gold and n_options."""
    rng = np.random.default_rng(seed)
    k = rng.integers(3, kmax + 1, size=n)
    s = rng.normal(size=(n, d, kmax)) * 3
    for i in range(n):
        s[i, :, k[i]:] = pad
    gold = np.array([rng.integers(0, k[i]) for i in range(n)])
    return s, gold, k


def hand_margin(row, g, kind):
    """row: list of the K valid scores of one sample at one depth."""
    x = list(scipy.special.softmax(row)) if kind == "prob" else list(row)
    return x[g] - max(v for j, v in enumerate(x) if j != g)


# ---------------------------------------------------------------- decision margin / predictions

def test_logit_margin_by_hand():
    # sample 0: K=3, gold 1; sample 1: K=2 (padded), gold 0
    s = np.array([[[1.0, 3.0, 2.5], [4.0, 0.0, 1.0]],
                  [[0.5, 2.0, NAN], [5.0, -1.0, NAN]]])
    dm = decision_margin(s, gold=[1, 0], n_options=[3, 2])
    np.testing.assert_allclose(dm, [[0.5, -4.0], [-1.5, 6.0]])
    assert dm.shape == (2, 2) and dm.dtype == np.float64


@pytest.mark.parametrize("kind", ["logit", "prob"])
@pytest.mark.parametrize("pad", [NAN, 1e9, -1e9])
def test_padding_matches_per_sample(kind, pad):
    # whatever sits in the padding (NaN, or a huge value that would win a naive max), results equal per-sample maths
    s, gold, k = ragged_scores(pad=pad)
    dm = decision_margin(s, gold, k, kind=kind)
    pred = predictions(s, k)
    for i in range(len(gold)):
        for l in range(s.shape[1]):
            row = list(s[i, l, :k[i]])
            assert dm[i, l] == pytest.approx(hand_margin(row, gold[i], kind), abs=1e-12)
            assert pred[i, l] == row.index(max(row))


def test_prob_margin_by_hand_softmax():
    s = np.array([[[2.0, 1.0, 0.0, NAN]]])
    e = [math.exp(2), math.exp(1), 1.0]
    z = sum(e)
    assert decision_margin(s, [1], [3], kind="prob")[0, 0] == pytest.approx(e[1] / z - e[0] / z, abs=1e-15)


def test_prob_margin_is_stable_for_huge_scores():
    # naive exp(1000) overflows; stable softmax gives sigmoid(1) - sigmoid(-1)
    dm = decision_margin(np.array([[[1000.0, 999.0]]]), [0], [2], kind="prob")[0, 0]
    sig = 1 / (1 + math.exp(-1))
    assert np.isfinite(dm) and dm == pytest.approx(sig - (1 - sig), abs=1e-12)


def test_ties_break_to_lowest_index_and_give_zero_margin():
    s = np.array([[[0.0, 2.0, 2.0, 1.0]],     # tie between 1 and 2 -> 1
                  [[3.0, 3.0, 3.0, NAN]],     # three-way tie -> 0
                  [[1.0, 1.0, NAN, NAN]]])    # tie, gold is the later one
    pred = predictions(s, [4, 3, 2])
    assert pred[:, 0].tolist() == [1, 0, 0]
    dm = decision_margin(s, [2, 0, 1], [4, 3, 2])
    np.testing.assert_array_equal(dm[:, 0], [0.0, 0.0, 0.0])
    # a tie at the gold is not a correct prediction for the later-index gold
    assert accuracy_by_depth(pred, [2, 0, 1]).tolist() == [1 / 3]


def test_bad_inputs_raise():
    s = np.zeros((2, 1, 3))
    with pytest.raises(ValueError):
        decision_margin(s, [0, 0], [3, 3], kind="softmax")
    with pytest.raises(ValueError):
        decision_margin(s, [0, 3], [3, 3])  # gold beyond K
    with pytest.raises(ValueError):
        decision_margin(s, [0, 2], [3, 2])  # gold beyond this sample's K
    s_nan = s.copy()
    s_nan[0, 0, 1] = NAN
    with pytest.raises(ValueError):
        predictions(s_nan, [3, 3])  # NaN inside the valid options is an engine bug
    with pytest.raises(ValueError):
        depth_summary(s, [0, 0], [3, 3], margin="bogus")


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    s, gold, k = ragged_scores(n=6)
    t = torch.tensor(s, dtype=torch.float32, requires_grad=True)
    np.testing.assert_allclose(decision_margin(t, torch.tensor(gold), torch.tensor(k)),
                               decision_margin(s.astype(np.float32), gold, k), rtol=1e-6)


# ---------------------------------------------------------------- accuracy, OF, labels, KL, entropy

def test_accuracy_by_depth_by_hand():
    pred = np.array([[0, 1], [2, 2], [1, 1]])
    assert accuracy_by_depth(pred, [0, 2, 0]).tolist() == [2 / 3, 1 / 3]


def test_option_frequency_and_labels_by_hand():
    pred = np.array([[0, 3], [0, 3], [2, 3], [1, 3]])  # depth 1 collapses onto option 3
    of = option_frequency(pred, kmax=5)
    assert of.shape == (2, 5)
    np.testing.assert_allclose(of[0], [2 / 4, 1 / 4, 1 / 4, 0, 0])
    np.testing.assert_allclose(of[1], [0, 0, 0, 1, 0])
    np.testing.assert_allclose(label_distribution([0, 1, 1, 4], kmax=5), [0.25, 0.5, 0, 0, 0.25])


def test_kl_matches_scipy_with_smoothing():
    eps = 1e-6
    p = np.array([0.5, 0.25, 0.25, 0.0])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    ps = (p + eps) / (1 + 4 * eps)
    qs = (q + eps) / (1 + 4 * eps)
    assert kl_divergence(p, q) == pytest.approx(scipy.stats.entropy(ps, qs), rel=1e-12)
    assert kl_divergence(q, q) == pytest.approx(0.0, abs=1e-15)
    # collapse onto an option with zero label mass stays finite and large
    collapsed = kl_divergence([0, 0, 0, 1.0], [0.5, 0.5, 0, 0])
    assert np.isfinite(collapsed) and collapsed == pytest.approx(math.log(1 / eps), rel=1e-3)
    # batched along leading axes
    np.testing.assert_allclose(kl_divergence(np.stack([p, q]), q), [scipy.stats.entropy(ps, qs), 0.0], atol=1e-15)


def test_entropy_and_top_share_match_textbook():
    p = np.array([[0.5, 0.25, 0.25, 0.0], [1.0, 0, 0, 0], [0.25] * 4])
    np.testing.assert_allclose(entropy(p), [scipy.stats.entropy(r) for r in p], rtol=1e-12)
    np.testing.assert_allclose(entropy(p), [1.5 * math.log(2), 0.0, math.log(4)], rtol=1e-12)
    np.testing.assert_array_equal(top_share(p), [0.5, 1.0, 0.25])


# ---------------------------------------------------------------- summaries

def test_depth_summary_matches_components():
    s, gold, k = ragged_scores(n=30, d=3)
    rows = depth_summary(s, gold, k, n_boot=200)
    json.dumps(rows)  # plain Python types only
    assert [r["depth"] for r in rows] == [0, 1, 2]
    dm_l, dm_p = decision_margin(s, gold, k), decision_margin(s, gold, k, kind="prob")
    pred = predictions(s, k)
    for l, r in enumerate(rows):
        assert r["dm_mean"] == pytest.approx(dm_l[:, l].mean()) == r["dm_logit_mean"]
        assert r["dm_median"] == pytest.approx(np.median(dm_l[:, l]))
        assert r["dm_prob_mean"] == pytest.approx(dm_p[:, l].mean())
        assert r["dm_ci"][0] <= r["dm_mean"] <= r["dm_ci"][1]
        assert r["dm_prob_ci"][0] <= r["dm_prob_mean"] <= r["dm_prob_ci"][1]
        assert r["acc"] == pytest.approx(np.mean(pred[:, l] == gold))
        assert r["acc_ci"][0] <= r["acc"] <= r["acc_ci"][1]
        of = [np.mean(pred[:, l] == j) for j in range(5)]
        assert r["option_frequency"] == pytest.approx(of)
        assert r["entropy"] == pytest.approx(scipy.stats.entropy(of))
        assert r["top_option_share"] == pytest.approx(max(of))
        q = [np.mean(gold == j) for j in range(5)]
        ps = (np.array(of) + 1e-6) / (1 + 5e-6)
        qs = (np.array(q) + 1e-6) / (1 + 5e-6)
        assert r["kl_to_labels"] == pytest.approx(scipy.stats.entropy(ps, qs))
    # margin="prob" switches the dm_* headline but keeps both variants
    rows_p = depth_summary(s, gold, k, margin="prob", n_boot=200)
    for r, rp in zip(rows, rows_p):
        assert rp["dm_mean"] == pytest.approx(rp["dm_prob_mean"]) and rp["dm_ci"] == rp["dm_prob_ci"]
        assert rp["dm_logit_mean"] == pytest.approx(r["dm_logit_mean"])
        assert rp["dm_mean"] != pytest.approx(r["dm_mean"])


def test_score_summary_by_hand():
    # final depth: raw picks option 0 (long option has more log-lik mass), norm picks option 1
    raw = np.array([[[0.0, 0.0], [-2.0, -3.0]], [[0.0, 0.0], [-1.0, -4.0]]])
    lengths = np.array([[2.0, 6.0], [1.0, 2.0]])
    norm = raw / lengths[:, None, :]
    out = score_summary(raw, norm, gold=[1, 0], n_options=[2, 2])
    # raw: preds (0, 0) -> acc 1/2; norm: sample0 -1 vs -0.5 -> 1, sample1 -1 vs -2 -> 0 -> acc 1
    assert out == {"acc": 0.5, "acc_norm": 1.0}


# ---------------------------------------------------------------- transition point and phases

@pytest.mark.parametrize("dm, tau, tp", [
    ([-1.0, -0.5, 0.2, 0.8], 0.0, 2),
    ([0.3, -0.1, 0.2, -0.4, 0.1, 0.5], 0.0, 4),   # dips before the sustained crossing don't count
    ([0.1, 0.2, 0.3], 0.0, 0),                    # decisive from the embeddings on
    ([-1.0, 0.5, 0.3, -0.2], 0.0, None),          # DM_L < 0: silent throughout
    ([-1.0, 0.5, 0.0], 0.0, None),                # DM_L == 0 is not > 0
    ([-1.0, 0.5, 0.2, 0.8], 0.3, 3),              # tau raises the bar
    ([-1.0, 0.5, 0.2, 0.25], 0.3, None),
])
def test_transition_point(dm, tau, tp):
    assert transition_point(np.array(dm), tau=tau) == tp


def test_transition_point_rejects_bad_input():
    with pytest.raises(ValueError):
        transition_point([0.1, 0.2], tau=-0.1)
    with pytest.raises(ValueError):
        transition_point([0.1, NAN])


def test_transition_point_bootstrap_sharp_and_silent():
    rng = np.random.default_rng(0)
    sharp = np.array([-1.0, -1.0, -1.0, 1.0, 1.0]) + 0.01 * rng.standard_normal((50, 5))
    r = transition_point_bootstrap(sharp, n_boot=200)
    assert r == {"tp_ci": [3, 3], "tp_none_frac": 0.0, "tp_boot_counts": {"3": 200}}
    r = transition_point_bootstrap(-np.abs(sharp), n_boot=200)
    assert r["tp_ci"] == [None, None] and r["tp_none_frac"] == 1.0


def test_transition_point_bootstrap_matches_exact_resampling_law():
    # Two questions: A crosses at depth 1, B never does. A resample of 2 is {A,A} w.p. 1/4 (TP 1) and otherwise has
    # mean [-1, 0, -1] or B's curve (no TP), so P(no TP) = 3/4 exactly.
    dm = np.array([[-1.0, 1.0, 1.0], [-1.0, -1.0, -3.0]])
    r = transition_point_bootstrap(dm, n_boot=4000, seed=1)
    assert abs(r["tp_none_frac"] - 0.75) < 0.03                         # binomial sd 0.007
    assert set(r["tp_boot_counts"]) == {"1", "none"} and r["tp_ci"] == [1, None]
    with pytest.raises(ValueError):
        transition_point_bootstrap(np.zeros(5))


def test_phases():
    assert phases(3, 9) == {"transition_point": 3, "transition_relative": 3 / 8,
                            "silent_phase": [0, 2], "decisive_phase": [3, 8]}
    assert phases(None, 9) == {"transition_point": None, "transition_relative": None,
                               "silent_phase": [0, 8], "decisive_phase": None}
    assert phases(0, 5)["silent_phase"] is None and phases(0, 5)["decisive_phase"] == [0, 4]
    assert phases(4, 5)["transition_relative"] == 1.0
    with pytest.raises(ValueError):
        phases(5, 5)


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_contains_mean_and_matches_normal_width():
    x = np.random.default_rng(1).normal(loc=2.0, scale=1.0, size=400)
    lo, hi = bootstrap_mean_ci(x, n_boot=4000, ci=0.95, seed=0)
    assert lo < x.mean() < hi
    # percentile CI of a mean ~ mean +- 1.96 * sd / sqrt(N); a 90% CI would be ~16% narrower
    expected = 2 * 1.959964 * x.std(ddof=0) / math.sqrt(len(x))
    assert (hi - lo) == pytest.approx(expected, rel=0.08)
    lo90, hi90 = bootstrap_mean_ci(x, n_boot=4000, ci=0.90, seed=0)
    assert (hi90 - lo90) == pytest.approx(expected * 1.644854 / 1.959964, rel=0.08)


def test_bootstrap_deterministic_per_seed():
    x = np.random.default_rng(2).normal(size=(50, 3))
    a, b, c = (bootstrap_mean_ci(x, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_bootstrap_narrows_with_n():
    x = np.random.default_rng(3).normal(size=4000)
    lo_s, hi_s = bootstrap_mean_ci(x[:40])
    lo_b, hi_b = bootstrap_mean_ci(x)
    assert (hi_b - lo_b) < 0.5 * (hi_s - lo_s)  # ~sqrt(100) = 10x narrower in expectation


def test_bootstrap_single_sample():
    assert bootstrap_mean_ci([3.5]) == (3.5, 3.5)
    lo, hi = bootstrap_mean_ci(np.array([[1.0, -2.0]]))
    np.testing.assert_array_equal(lo, [1.0, -2.0])
    np.testing.assert_array_equal(hi, [1.0, -2.0])


def test_bootstrap_shares_resamples_across_columns_and_chunks(monkeypatch):
    x = np.random.default_rng(4).normal(size=(60, 3))
    lo, hi = bootstrap_mean_ci(x, n_boot=300, seed=5)
    assert lo.shape == hi.shape == (3,)
    # identical columns get identical CIs only if every column sees the same resamples
    lo2, hi2 = bootstrap_mean_ci(np.repeat(x[:, :1], 3, axis=1), n_boot=300, seed=5)
    assert np.all(lo2 == lo2[0]) and np.all(hi2 == hi2[0]) and lo2[0] == lo[0]
    # each column equals the 1-D bootstrap of that column with the same seed
    for j in range(3):
        assert bootstrap_mean_ci(x[:, j], n_boot=300, seed=5) == pytest.approx((lo[j], hi[j]), abs=1e-12)
    # chunking over replicates does not change the answer
    monkeypatch.setattr(bootstrap_mod, "_MAX_CHUNK_ELEMS", 7 * 60 * 3)
    lo3, hi3 = bootstrap_mean_ci(x, n_boot=300, seed=5)
    np.testing.assert_allclose(lo3, lo, atol=1e-12)
    np.testing.assert_allclose(hi3, hi, atol=1e-12)
