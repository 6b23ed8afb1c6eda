import numpy as np
import pytest
import torch

from helpers import plain_cloze_scores, tiny_lm, tiny_samples
from prunelens.engine.capture import capture_residuals
from prunelens.engine.score import score_cloze, score_letter
from prunelens.tasks.base import MCSample, TaskError
from tiny import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_cloze_matches_plain_forward(family):
    """Shared-context KV cache + left padding + stacked lens == one plain forward per option, at every depth."""
    lm = tiny_lm(family)
    samples = tiny_samples(6)
    ours = score_cloze(lm, samples, batch_size=4, progress=False)
    ref = plain_cloze_scores(lm.model, lm.tokenizer, samples)
    np.testing.assert_allclose(ours.scores, ref, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_results_do_not_depend_on_batch_size(family):
    lm = tiny_lm(family)
    samples = tiny_samples(12)
    a = score_cloze(lm, samples, batch_size=1, progress=False)
    b = score_cloze(lm, samples, batch_size=7, progress=False)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4, equal_nan=True)
    la = score_letter(lm, samples, batch_size=1, progress=False)
    lb = score_letter(lm, samples, batch_size=5, progress=False)
    np.testing.assert_allclose(la.scores, lb.scores, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt_neox"])
def test_letter_scores_match_plain_logits(family):
    lm = tiny_lm(family)
    samples = tiny_samples(5)
    ours = score_letter(lm, samples, progress=False)
    tok = lm.tokenizer
    for i, s in enumerate(samples):
        ids = tok(s.letter_prompt, return_tensors="pt").input_ids
        logits = lm.model(ids).logits[0, -1]
        letter_ids = [tok(s.letter_prompt + L).input_ids[-1] for L in s.letters]
        np.testing.assert_allclose(ours.scores[i, -1, :s.n_options], logits[letter_ids].detach().numpy(), atol=1e-4)
        assert np.isnan(ours.scores[i, -1, s.n_options:]).all()


def test_varying_option_counts_and_partial_contexts():
    """WinoGrande-style samples: contexts differ per option, continuation shared; K varies across samples."""
    lm = tiny_lm("qwen2")
    s1 = MCSample("w", ("The cat sat on the mat", "The cat sat on the sky"), (" because it was", " because it was"),
                  ("mat", "sky"), 0, "x")
    samples = [s1] + tiny_samples(3)
    ours = score_cloze(lm, samples, batch_size=3, progress=False)
    ref = plain_cloze_scores(lm.model, lm.tokenizer, samples)
    np.testing.assert_allclose(ours.scores, ref, atol=1e-4, equal_nan=True)


def test_capture_only_requested_depths():
    lm = tiny_lm("llama")
    ids = lm.tokenizer("Question: hello there\nAnswer:", return_tensors="pt").input_ids
    pos = torch.tensor([[ids.shape[1] - 1]])
    with capture_residuals(lm.anatomy, pos) as full:
        lm.anatomy.base(input_ids=ids)
    with capture_residuals(lm.anatomy, pos, depths=[0, 4]) as part:
        lm.anatomy.base(input_ids=ids)
    assert len(full.states) == 5 and len(part.states) == 2
    assert torch.equal(part.states[0], full.states[0]) and torch.equal(part.states[1], full.states[4])
    # depth 0 is the embedding output, not the first layer's output
    assert not torch.allclose(full.states[0], full.states[1])


def test_bad_letter_token_fails_before_compute():
    """A 6-option sample needs " F", which the tiny tokenizer splits into two tokens: a clear TaskError naming the
    sample, raised before any forward pass."""
    lm = tiny_lm("llama")
    opts = ["one", "two", "three", "four", "five", "six"]
    bad = MCSample("q7", ("c",) * 6, tuple(" " + o for o in opts), tuple(opts), 0,
                   "Question: x\n" + "".join(f"{L}. {o}\n" for L, o in zip("ABCDEF", opts)) + "Answer:")
    calls = []
    h = lm.anatomy.base.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(TaskError, match="q7.*' F'"):
        score_letter(lm, tiny_samples(3) + [bad], progress=False)
    h.remove()
    assert not calls


@pytest.mark.parametrize("family", ["gemma3", "gpt2", "qwen2"])
def test_cloze_resumed_from_stored_residuals(family):
    """A scoring pass that starts at depth p from residuals stored by an earlier pass gives the full pass's scores
    at depths >= p (shared-context KV cache included), for models with position embeddings and sliding layers."""
    from prunelens.engine.score import Resume
    lm = tiny_lm(family, num_layers=5)
    S = tiny_samples(6)
    stored = {}
    full = score_cloze(lm, S, batch_size=4, progress=False,
                       resume=Resume(0, None, range(6), lambda d, c, h: stored.setdefault(d, {}).__setitem__(c, h)))
    assert sorted(stored) == list(range(6))
    for p in (1, 3, 4):
        part = score_cloze(lm, S, depths=range(p, 6), batch_size=4, progress=False,
                           resume=Resume(p, stored[p].__getitem__))
        np.testing.assert_allclose(part.scores, full.scores[:, p:], atol=1e-4)
        np.testing.assert_array_equal(part.final_greedy, full.final_greedy)
    with pytest.raises(ValueError, match="at or before the first scored depth"):
        score_cloze(lm, S, depths=[0, 5], progress=False, resume=Resume(2, stored[2].__getitem__))
