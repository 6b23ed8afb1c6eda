"""Export: a plain `AutoModelForCausalLM.from_pretrained` of the exported folder gives the in-memory pruned view's
logits (<= 1e-5) and generates greedily with the default and the static cache."""
import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from helpers import tiny_lm
from prunelens.prune.export import export_pruned
from prunelens.model.surgery import keep_from_remove, pruned_view
from tiny import FAMILIES

PROMPT = "Question: Which planet is known as the red planet?\nAnswer:"


def _gen(model, ids, **kw):
    return model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0, **kw)


def check_export(lm, remove, tmp_path, atol=1e-5):
    tied = lm.anatomy.tied
    ids = lm.tokenizer(PROMPT, return_tensors="pt").input_ids
    keep = keep_from_remove(remove, lm.anatomy.num_layers)
    with torch.no_grad(), pruned_view(lm, keep):
        ref = lm.model(ids).logits
        ref_gen = _gen(lm.model, ids)
    export_pruned(lm, remove, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in cfg                                   # loadable without prunelens
    m = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    n = m.config.get_text_config().num_hidden_layers
    assert n == len(keep)
    types = getattr(m.config.get_text_config(), "layer_types", None)
    assert types is None or len(types) == n
    assert (m.get_input_embeddings().weight is m.get_output_embeddings().weight) == tied
    with torch.no_grad():
        got = m(ids).logits
        assert (got - ref).abs().max().item() <= atol
        assert torch.equal(_gen(m, ids), ref_gen)
        assert torch.equal(_gen(m, ids, cache_implementation="static"), ref_gen)
    return m


@pytest.mark.parametrize("family", FAMILIES)
def test_export_tiny(family, tmp_path):
    lm = tiny_lm(family, num_layers=5)
    check_export(lm, [1, 3], tmp_path)
    assert lm.anatomy.num_layers == 5                              # the view left the dense model intact


def test_export_merged_block(tmp_path):
    """A LaCo/MKA merge is exported with its merged weights (not a silent copy of one block)."""
    from prunelens.prune.merge import BlockBank
    lm = tiny_lm("llama", num_layers=4)
    merges = {1: [(1, 0.5), (2, 0.5)]}
    export_pruned(lm, [2], tmp_path, merges)
    m = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    w = m.model.layers[1].mlp.up_proj.weight
    dense = lm.anatomy.layers
    assert torch.allclose(w, 0.5 * dense[1].mlp.up_proj.weight + 0.5 * dense[2].mlp.up_proj.weight, atol=1e-6)
    assert not torch.equal(BlockBank(dense).modules(merges)[1].mlp.up_proj.weight, dense[1].mlp.up_proj.weight)


def test_export_rejects_bad_ids(tmp_path):
    lm = tiny_lm("llama", num_layers=3)
    with pytest.raises(ValueError, match="out of range"):
        export_pruned(lm, [5], tmp_path)
    with pytest.raises(ValueError, match="every layer"):
        export_pruned(lm, [0, 1, 2], tmp_path)
    assert not (tmp_path / "config.json").exists()


@pytest.mark.real
def test_export_gemma3_270m(tmp_path):
    from prunelens.model import load_model
    lm = load_model("gemma-3-270m", verify=False)
    check_export(lm, [3, 7, 9, 15], tmp_path)


def test_cli_export_from_trajectory_step(tmp_path):
    """`prunelens export --trajectory T --step k` rebuilds that step (including LaCo merges) from JSON alone."""
    from prunelens.cli import main
    from prunelens.prune.export import step_of
    from prunelens.prune.run import prune
    from helpers import tiny_samples
    from tiny import save_model

    class Task:
        name, split, source, samples = "tiny", "x", "tiny", tiny_samples(6)
    ck = save_model("llama", tmp_path / "ck", num_layers=4)
    from prunelens.model import load_model
    lm = load_model(str(ck), device="cpu", verify=False)
    prune(str(ck), "tiny", "laco", tmp_path / "t", steps=2, lm=lm, task_obj=Task(), laco_t=0.0, n_boot=10,
          plots=False, log=lambda *a: None)
    removed, merges = step_of(tmp_path / "t", 1)
    assert merges and removed
    assert main(["export", "--model", str(ck), "--trajectory", str(tmp_path / "t"), "--step", "1",
                 "--out", str(tmp_path / "e"), "--device", "cpu"]) == 0
    m = AutoModelForCausalLM.from_pretrained(tmp_path / "e")
    assert m.config.num_hidden_layers == 4 - len(removed)
    assert main(["export", "--model", str(ck), "--remove", "0,9", "--out", str(tmp_path / "x")]) == 2
