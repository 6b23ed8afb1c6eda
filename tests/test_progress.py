"""Long multi-pass analyses (noise, ablate, controls, cka, recover) show one outer progress bar on stderr from their
first pass, with the command's name and the number of passes; progress=False shows none."""
import re

import pytest

from helpers import tiny_lm, tiny_samples


def _noise(lm, S, progress):
    from prunelens.analyses.noise import noise_grid
    noise_grid(lm, S, alphas=(0.0, 1.0), depths=[0, 2], seeds=(0,), tp=2, progress=progress)
    return "noise", 2 + 2 * 2 * 1                           # sigma + clean, then alphas x depths x seeds


def _ablate(lm, S, progress):
    from prunelens.analyses.ablation import transition_ablation
    transition_ablation(lm, {"a": S, "b": S}, tp=2, window=(-1, 0), n_boot=10, progress=progress)
    return "ablate", 4 * 2                                   # configs (dense, -1, -2, -1,2) x tasks


def _controls(lm, S, progress):
    from prunelens.analyses.controls import run_controls
    run_controls(lm, S, counts=[1, 2], seeds=(0, 1), n_boot=10, progress=progress)
    return "controls", 2 + 2 * (3 + 2)        # BI + dense, then counts x (ShortGPT, angular, tail + seeds)


def _cka(lm, S, progress):
    from prunelens.analyses.cka import cka_pruned_vs_dense
    cka_pruned_vs_dense(lm, S, "cloze", [0, 2, 3], accuracy={}, progress=progress)
    return "cka", 4                                          # dense, pruned, and both evaluations


def _recover(lm, S, progress):
    from prunelens.analyses.recovery import recover
    recover(lm, S, S[:4], removals=[[1], [2]], mode="full", steps=1, batch_size=2, n_boot=10, full_depth=False,
            progress=progress)
    return "recover", 1 + 3 * 2                              # dense, then before / train / after per removal


@pytest.mark.parametrize("run", [_noise, _ablate, _controls, _cka, _recover], ids=lambda f: f.__name__[1:])
def test_one_outer_bar(run, capsys):
    lm, S = tiny_lm("llama"), tiny_samples(6)
    capsys.readouterr()
    desc, total = run(lm, S, True)
    err = capsys.readouterr().err
    assert re.search(rf"{desc}:\s+0%.*\| 0/\d+ ", err), err              # shown before the first pass ends
    assert re.search(rf"{desc}: 100%.*\| {total}/{total} ", err), err    # and counts every pass
    assert len(re.findall(r"\d+/\d+ \[", err)) == len(re.findall(rf"{desc}:", err)), err   # inner passes are quiet
    run(lm, S, False)
    assert f"{desc}:" not in capsys.readouterr().err
