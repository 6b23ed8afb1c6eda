"""Transition ablation equals a direct pruned_view + measure, and the configs are the documented window."""
import pytest

from helpers import tiny_lm, tiny_samples
from prunelens.analyses.ablation import ablation_configs, reference_tp, transition_ablation
from prunelens.analyze import measure
from prunelens.model.surgery import keep_from_remove, pruned_view


def test_configs():
    assert ablation_configs(3, 6) == [[], [1], [2], [3], [4], [1, 2], [2, 3], [3, 4]]
    assert ablation_configs(1, 4, pairs=False) == [[], [0], [1], [2]]           # clipped at layer 0
    assert reference_tp([3, None, 5, 4]) == 4
    with pytest.raises(ValueError):
        reference_tp([None])


def test_equals_direct_pruned_measure():
    lm, S = tiny_lm("qwen2"), tiny_samples(10)
    tasks = {"a": S, "b": S[:6]}
    res = transition_ablation(lm, tasks, "cloze", tp=2, window=(-1, 0), n_boot=50)
    assert [r["removed"] for r in res["rows"]] == [[], [1], [2], [1, 2]]
    L = lm.anatomy.num_layers
    for row in res["rows"]:
        for name, samples in tasks.items():
            keep = keep_from_remove(row["removed"], L)
            with pruned_view(lm, keep):
                m = measure(lm, samples, "cloze", n_boot=50, progress=False)
            assert row["tasks"][name]["acc"] == pytest.approx(m.summary["acc"], abs=1e-12)
            assert row["tasks"][name]["dm_final"] == pytest.approx(m.summary["dm_final"], abs=1e-9)
        assert row["avg_acc"] == pytest.approx(sum(row["tasks"][n]["acc"] for n in tasks) / 2)
    assert set(res["task_tp"]) == {"a", "b"}
