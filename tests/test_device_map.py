"""Big-model loading through accelerate `device_map`, tested on a tiny model with layers offloaded to disk (the
only second "device" a CPU machine has): the lens, the decision-lens analysis, pruned views and evaluation give the
same numbers as the plain single-device model, and only scored positions are gathered."""
import json

import numpy as np
import pytest

from helpers import tiny_samples, write_tiny_qa
from prunelens.analyze import measure
from prunelens.cli import main
from prunelens.evaluate import run_eval
from prunelens.model import load_model
from tiny import save_model

MAP = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu",
       "model.layers.3": "disk", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("devmap")
    ckpt = save_model("llama", d / "llama", num_layers=4)
    task = d / "tinyqa.jsonl"
    write_tiny_qa(task, 8)
    dense = load_model(str(ckpt), device="cpu")
    off = load_model(str(ckpt), device_map=MAP, offload_folder=str(d / "offload"))
    return ckpt, task, dense, off, d


def test_layers_really_offloaded(models):
    *_, off, _ = models
    assert off.model.model.layers[1].self_attn.q_proj.weight.device.type == "meta"
    assert hasattr(off.model.model.layers[1], "_hf_hook")


def test_analyze_all_depths_match(models):
    _, _, dense, off, _ = models
    a = measure(dense, tiny_samples(8), "cloze", n_boot=10, progress=False)
    b = measure(off, tiny_samples(8), "cloze", n_boot=10, progress=False)
    np.testing.assert_allclose(b.scores.scores, a.scores.scores, atol=1e-5)
    a = measure(dense, tiny_samples(8), "letter", n_boot=10, progress=False)
    b = measure(off, tiny_samples(8), "letter", n_boot=10, progress=False)
    np.testing.assert_allclose(b.scores.scores, a.scores.scores, atol=1e-5)


def test_eval_and_pruned_view_match(models):
    ckpt, task, dense, off, _ = models
    for remove in (None, "1,2"):
        a = run_eval(str(ckpt), str(task), None, lm=dense, remove=remove, progress=False)
        b = run_eval(str(ckpt), str(task), None, lm=off, remove=remove, progress=False)
        assert a["results"] == b["results"]


def test_cli_device_map(models, tmp_path):
    ckpt, task, *_ = models
    rc = main(["eval", "--model", str(ckpt), "--tasks", str(task), "--device-map", json.dumps(MAP),
               "--offload-folder", str(tmp_path / "off"), "--out", str(tmp_path / "o")])
    assert rc == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["config"]["device_map"] == "custom"


def test_cli_analyze_and_prune_device_map(models, tmp_path):
    """analyze and prune take --device-map too, and give the single-device numbers (offloaded layers included)."""
    ckpt, task, *_ = models
    common = ["--model", str(ckpt), "--tasks", str(task), "--n-boot", "10"]
    off = ["--device-map", json.dumps(MAP), "--offload-folder", str(tmp_path / "off")]
    assert main(["analyze", *common, "--out", str(tmp_path / "a0")]) == 0
    assert main(["analyze", *common, *off, "--out", str(tmp_path / "a1")]) == 0
    a0, a1 = (json.loads((tmp_path / d / "analysis.json").read_text()) for d in ("a0", "a1"))
    assert a1["config"]["device_map"] == "custom"
    np.testing.assert_allclose([r["dm_mean"] for r in a1["depths"]], [r["dm_mean"] for r in a0["depths"]], atol=1e-5)
    prune = ["prune", *common, "--method", "iterative", "--remove-count", "2"]
    assert main([*prune, "--out", str(tmp_path / "p0")]) == 0
    assert main([*prune, *off, "--out", str(tmp_path / "p1")]) == 0
    p0, p1 = (json.loads((tmp_path / d / "trajectory.json").read_text()) for d in ("p0", "p1"))
    assert [s["removed"] for s in p1["steps"]] == [s["removed"] for s in p0["steps"]]
    for s0, s1 in zip(p0["steps"], p1["steps"]):
        np.testing.assert_allclose(s1["dm_mean"], s0["dm_mean"], atol=1e-5)
        for k in s0["scores"]:
            assert abs(s1["scores"][k] - s0["scores"][k]) < 1e-5


def test_bad_device_map_json(models, tmp_path, capsys):
    ckpt, task, *_ = models
    rc = main(["analyze", "--model", str(ckpt), "--tasks", str(task), "--device-map", "{cpu", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "--device-map" in err and "not valid JSON" in err and len(err.strip().splitlines()) == 1
