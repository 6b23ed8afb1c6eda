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
