"""Model identity: the same weights give the same key after a reconversion, other weights another key."""
import json

from prunelens.fingerprint import model_identity
from prunelens.model.gguf import MARKER
from prunelens.model.load import load_model

from tiny import save_model


def test_identity_ignores_the_conversion_record_and_sees_the_weights(tmp_path):
    ck = save_model("llama", tmp_path / "m", num_layers=2)
    (ck / MARKER).write_text(json.dumps({"source": "x.gguf", "seconds": 76.2}))
    key = model_identity(load_model(str(ck), device="cpu", log=lambda *a: None))
    # a reconversion of the same file: same weights, another wall time in the record
    (ck / MARKER).write_text(json.dumps({"source": "x.gguf", "seconds": 81.9}))
    assert model_identity(load_model(str(ck), device="cpu", log=lambda *a: None)) == key
    other = save_model("llama", tmp_path / "o", num_layers=2, seed=1)
    assert model_identity(load_model(str(other), device="cpu", log=lambda *a: None)) != key


def test_identity_ignores_the_writers_transformers_version_but_not_the_config(tmp_path):
    """save_pretrained stamps the installed transformers version into config.json and generation_config.json: an
    upgrade and a reconversion of the same file must keep the key (it did not: 5.24.0 -> 5.25.0), while any real
    change of the config (here one value) must change it. Checked against a byte rewrite of the very file."""
    ck = save_model("llama", tmp_path / "m", num_layers=2)
    load = lambda: model_identity(load_model(str(ck), device="cpu", log=lambda *a: None))
    key = load()
    cfg = ck / "config.json"
    raw = json.loads(cfg.read_text())
    assert "transformers_version" in raw                 # the stamp this rule is about is really written
    cfg.write_text(json.dumps({**raw, "transformers_version": "99.0.0"}, indent=5))   # also another layout
    assert load() == key
    (ck / "generation_config.json").write_text(json.dumps({"transformers_version": "99.0.0"}))
    changed_gen = load()
    assert changed_gen != key                            # a generation config appeared: a file the key covers
    (ck / "generation_config.json").write_text(json.dumps({"transformers_version": "1.0"}))
    assert load() == changed_gen
    cfg.write_text(json.dumps({**raw, "rms_norm_eps": raw["rms_norm_eps"] * 2}))
    assert load() != changed_gen
