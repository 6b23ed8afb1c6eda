"""metrics/chance.py: the two chance levels, against direct counts and scipy's Wilson interval."""
import numpy as np
import pytest

from prunelens.metrics.chance import chance_levels, judge, levels, wilson


def test_levels_are_the_expected_accuracies_of_random_and_constant_answers():
    rng = np.random.default_rng(0)
    k = rng.choice([3, 4, 5], 500)
    gold = np.minimum(rng.choice(4, 500, p=[0.1, 0.5, 0.3, 0.1]), k - 1)
    lv = chance_levels(gold, k)
    assert lv["uniform"] == pytest.approx(np.mean([1 / x for x in k]))
    # simulated: a uniformly random answer per question, and every constant answer
    sim = np.mean([(rng.integers(0, k) == gold).mean() for _ in range(400)])
    assert abs(sim - lv["uniform"]) < 0.01
    const = [(gold == j).mean() for j in range(5)]
    assert lv["constant"] == max(const) and lv["constant_option"] == int(np.argmax(const)) == 1
    assert lv["floor"] == max(lv["uniform"], lv["constant"])


def test_a_model_that_always_says_yes_is_not_above_chance():
    # BoolQ-like: 62% "yes" (option 1); the constant answer beats the uniform chance by far
    gold = np.array([1] * 248 + [0] * 152)
    lv = chance_levels(gold, np.full(400, 2))
    acc = (np.ones(400, int) == gold).mean()
    lo, _ = wilson(int(acc * 400), 400)
    assert lo > lv["uniform"]                                  # the uniform level alone would call it above chance
    ok, why = judge(acc, 400, lv)
    assert ok is False and "0.620 (always option #2 (B))" in why
    assert judge(0.75, 400, lv)[0] is True                     # right on 75%: above both
    # the Wilson bound decides: just above the floor on one side, just at it on the other
    k = next(k for k in range(248, 400) if wilson(k, 400)[0] > 0.62)
    assert judge(k / 400, 400, lv)[0] is True and judge((k - 1) / 400, 400, lv)[0] is False


def test_unknown_constant_level_is_not_a_verdict():
    lv = levels(0.5)                                           # a stored trajectory without its gold shares
    ok, why = judge(0.75, 400, lv)
    assert ok is None and "not known" in why
    assert judge(0.52, 400, lv)[0] is False                    # at the uniform level: at chance whatever the rest
    assert judge(0.75, 0, lv) == (None, "no questions")


def test_wilson_equals_scipy():
    from scipy.stats import binomtest
    for k, n in ((0, 10), (3, 10), (59, 200), (200, 200)):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k, n) == pytest.approx([ci.low, ci.high], abs=1e-12)
    assert wilson(0, 0) is None


def test_bad_gold_is_one_clear_error():
    with pytest.raises(ValueError, match="outside its question's options"):
        chance_levels([0, 2], [2, 2])
    with pytest.raises(ValueError, match="no questions"):
        chance_levels([], [])
