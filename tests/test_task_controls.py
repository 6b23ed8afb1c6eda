"""Letter-format controls: other letters and permuted options keep the questions and move only what they say."""
import numpy as np
import pytest
import torch

from helpers import tiny_lm, tiny_samples, write_tiny_qa
from prunelens.engine.score import score
from prunelens.tasks import TaskError, load_task
from prunelens.tasks.controls import permute_options, relabel


def test_relabel_rewrites_the_option_lines_and_the_decision_tokens():
    S = tiny_samples(4)
    R = relabel(S, "qzrxw")
    for s, r in zip(S, R):
        assert r.letters == tuple(" " + c for c in "QZRXW"[:s.n_options])
        assert r.letter_prompt.split("\n")[-1] == "Answer:"
        want = s.letter_prompt
        for k in range(s.n_options):
            want = want.replace(f"\n{'ABCDE'[k]}. ", f"\n{'QZRXW'[k]}. ", 1)
        assert r.letter_prompt == want
        assert (r.gold, r.contexts, r.continuations) == (s.gold, s.contexts, s.continuations)
    with pytest.raises(TaskError, match="distinct letters"):
        relabel(S, "QQRX")
    with pytest.raises(TaskError, match="up to 5 options"):
        relabel(S, "QZR")


def test_relabelled_letters_are_scored_on_their_own_tokens():
    lm, S = tiny_lm("llama", num_layers=2), tiny_samples(4)
    R = relabel(S, "EDCBA")          # the tiny tokenizer has single tokens for " A".." E" only
    sc = score(lm, R, "letter", depths=[2], progress=False)
    for i, r in enumerate(R):   # option k's score is the final logit of the token " " + letters[k], read here
        ids = lm.tokenizer(r.letter_prompt)["input_ids"]
        if lm.tokenizer.bos_token_id is not None and ids[:1] != [lm.tokenizer.bos_token_id]:
            ids = [lm.tokenizer.bos_token_id] + ids
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
        for k, letter in enumerate(r.letters):
            tid = lm.tokenizer(r.letter_prompt + letter)["input_ids"][-1]
            assert lm.tokenizer.decode([tid]) == letter
            assert sc.scores[i, -1, k] == pytest.approx(logits[tid].item(), abs=1e-4)


def test_permute_moves_gold_with_its_option_and_leaves_cloze_scores_alone():
    lm, S = tiny_lm("llama", num_layers=2), tiny_samples(6)
    P = permute_options(S, seed=3)
    assert any(p.gold != s.gold for p, s in zip(P, S))
    for s, p in zip(S, P):
        assert p.continuations[p.gold] == s.continuations[s.gold]
        assert sorted(p.choices) == sorted(s.choices)
        for k, c in enumerate(p.choices):
            assert f"\n{'ABCDE'[k]}. {c.strip()}\n" in p.letter_prompt + "\n"
    a, b = score(lm, S, "cloze", progress=False), score(lm, P, "cloze", progress=False)
    for i, (s, p) in enumerate(zip(S, P)):      # each option's score follows the option, not its slot
        for k in range(s.n_options):
            np.testing.assert_allclose(b.scores[i, :, p.continuations.index(s.continuations[k])], a.scores[i, :, k],
                                       atol=1e-6)
    assert permute_options(S, 3) == P and permute_options(S, 4) != P


def test_load_task_records_the_variant(tmp_path):
    spec = write_tiny_qa(tmp_path / "qa.jsonl", 5)
    t = load_task(str(spec), letters="QZRXW", permute=1)
    assert t.variant == "options permuted (seed 1); letters QZRXW"
    assert t.samples[0].letters[0] == " Q" and load_task(str(spec)).variant == ""
