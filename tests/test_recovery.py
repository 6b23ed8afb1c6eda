"""LoRA recovery on a tiny pruned model: the loss goes down, the dense model is untouched, before/after recorded."""
import pytest
import torch

from helpers import tiny_lm, tiny_samples
from prunelens.analyses.recovery import collate, lora_targets, recover, training_items


def test_training_items_mask_context():
    lm, S = tiny_lm("llama"), tiny_samples(3)
    for (ids, lab), s in zip(training_items(lm, S, "cloze"), S):
        answer = [t for t in lab if t != -100]
        assert answer and ids[-len(answer):] == answer and lab[:len(ids) - len(answer)] == [-100] * (len(ids) - len(answer))
    ids, lab = training_items(lm, S, "letter")[0]
    assert sum(t != -100 for t in lab) == 1                              # only the gold letter token
    b = collate(training_items(lm, S, "cloze"), 0, "cpu")
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape
    assert set(lora_targets(lm.anatomy)) >= {"q_proj", "v_proj"}


def test_lora_loss_decreases_and_dense_untouched():
    pytest.importorskip("peft", reason="LoRA recovery needs peft (pip install peft)")
    lm, S = tiny_lm("llama"), tiny_samples(12)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    res = recover(lm, S, S[:6], "cloze", removals=[[1], [1, 2]], steps=12, lr=1e-2, batch_size=4, n_boot=20)
    for run in res["runs"]:
        assert run["loss_after"]["train"] < run["loss_before"]["train"] - 0.1      # it learned
        assert len(run["train_loss"]) == 12 and run["remaining_layers"] == 4 - len(run["removed"])
        assert set(run["before"]) >= {"acc", "dm_final", "dm_by_depth", "transition_point"}
        assert set(run["after"]["estimators"]) >= {"mean_dm_tp", "decision_depth_pred", "acc_changepoint"}
        assert len(run["after"]["dm_by_depth"]) == run["remaining_layers"] + 1
    after = lm.model.state_dict()
    assert set(after) == set(before) and all(torch.equal(before[k], after[k]) for k in before)
    assert lm.anatomy.num_layers == 4 and res["dense"]["acc"] is not None


def test_full_finetune_runs():
    lm, S = tiny_lm("gemma3"), tiny_samples(6)
    res = recover(lm, S, S[:4], "letter", removals=[[0]], mode="full", steps=4, lr=1e-3, batch_size=3, n_boot=10)
    r = res["runs"][0]
    assert r["loss_after"]["train"] < r["loss_before"]["train"]
