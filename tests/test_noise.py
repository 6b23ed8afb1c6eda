"""Noise injection: alpha = 0 is exactly the clean run, a large alpha changes it, and the hook hits h_l."""
import numpy as np
import pytest
import torch

from helpers import tiny_lm, tiny_samples, with_and_without_prefix
from prunelens.analyses.noise import gaussian_noise, noise_grid, phase_sensitivity
from prunelens.analyze import measure
from prunelens.engine.capture import capture_residuals


def test_zero_alpha_is_clean_and_large_alpha_changes():
    lm, S = tiny_lm("gemma3"), tiny_samples(8)
    L = lm.anatomy.num_layers
    res = noise_grid(lm, S, "cloze", alphas=(0.0, 50.0), depths=[0, 2, L], seeds=(0, 1), tp=2)
    assert res["clean"]["transition_point"] == 2          # a given TP spares the full-depth clean run
    clean = measure(lm, S, "cloze", depths=[L], n_boot=1, progress=False).summary
    dm = np.asarray(res["dm"])
    assert np.all(dm[0] == clean["dm_final"])                        # exactly, not approximately
    assert np.all(np.asarray(res["acc"])[0] == clean["acc"])
    assert np.all(np.abs(dm[1] - clean["dm_final"]) > 1e-6)          # large noise moves every cell
    assert not np.allclose(dm[1, :, 0], dm[1, :, 1])                 # different seeds, different draws
    assert res["dm_std"].shape == (2, 3)
    assert len(phase_sensitivity(res)) == 2
    # The measurement the caller chose (score, margin) is the one every cell uses.
    res = noise_grid(lm, S, "cloze", alphas=(0.0,), depths=[0], seeds=(0,), tp=2, score_kind="norm", margin="prob")
    clean = measure(lm, S, "cloze", depths=[L], n_boot=1, progress=False, score_kind="norm", margin="prob").summary
    assert res["dm"][0][0][0] == clean["dm_final"] and res["acc"][0][0][0] == clean["acc_norm"]
    assert (res["score_kind"], res["margin"]) == ("norm", "prob")


def test_noise_lands_on_the_chosen_depth_only():
    lm = tiny_lm("llama")
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    pos = torch.arange(5)[None]
    with capture_residuals(lm.anatomy, pos) as c0:
        lm.anatomy.base(input_ids=ids)
    for d in (0, 2, lm.anatomy.num_layers):
        with gaussian_noise(lm.anatomy, d, 1.0, seed=0), capture_residuals(lm.anatomy, pos) as c1:
            lm.anatomy.base(input_ids=ids)
        a, b = c0.stacked()[0], c1.stacked()[0]                        # [D, T, d]
        assert torch.equal(a[:d], b[:d])                               # depths before d untouched
        diff = b[d] - a[d]
        assert 0.5 < diff.std().item() < 1.5                           # N(0, 1) added at depth d
    # the hook is removed on exit
    with capture_residuals(lm.anatomy, pos) as c2:
        lm.anatomy.base(input_ids=ids)
    assert torch.equal(c0.stacked(), c2.stacked())


def test_phase_sensitivity_by_hand():
    res = {"clean": {"transition_point": 2, "dm_final": 1.0, "acc": 0.8}, "alphas": [0.1], "depths": [0, 1, 2, 3],
           "dm_mean": [[0.9, 0.5, 0.8, 1.0]], "acc_mean": [[0.8, 0.4, 0.7, 0.8]]}
    (ps,) = phase_sensitivity(res)
    assert ps["silent_drop"] == pytest.approx(0.3) and ps["decisive_drop"] == pytest.approx(0.1)
    assert ps["silent_acc_drop"] == pytest.approx(0.2) and ps["decisive_acc_drop"] == pytest.approx(0.05)
    assert (ps["n_silent"], ps["n_decisive"]) == (2, 2)


def test_noisy_passes_from_the_stored_clean_prefix_equal_whole_passes():
    """Noise at depth d >= 2 starts from the clean residual at d-1: the same draws land on the same states, so every
    cell equals the whole pass; layer 0 then runs in the sigma and clean passes only."""
    from prunelens.analyses.noise import noise_grid
    lm, S = tiny_lm("llama", num_layers=6), tiny_samples(8)
    whole, pre, saved, one = with_and_without_prefix(lm, lambda on: noise_grid(
        lm, S, "cloze", alphas=(0.5, 2.0), depths=[2, 4, 6], seeds=(0, 1), tp=3, batch_size=4, progress=False,
        dense_prefix=on), S)
    assert saved == 12 * one > 0                                       # no cell ran layer 0
    np.testing.assert_array_equal(whole["acc"], pre["acc"])
    np.testing.assert_allclose(whole["dm"], pre["dm"], atol=1e-5)
    assert np.abs(whole["dm"] - whole["clean"]["dm_final"]).max() > 1e-3    # the noise did something
