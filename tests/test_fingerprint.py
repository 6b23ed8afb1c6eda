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


def test_an_identity_of_the_earlier_byte_rule_is_still_recognised_for_the_same_files(tmp_path):
    """Runs stored before the JSON rule carry the byte-rule identity: a journal or a trajectory key made by it is
    resumed while the checkpoint's files are unchanged, and is not once a config changes."""
    from prunelens.fingerprint import legacy_model_identity
    from prunelens.journal import Journal, for_run
    from prunelens.prune.trajectory import resume_mismatch
    ck = save_model("llama", tmp_path / "m", num_layers=2)
    lm = load_model(str(ck), device="cpu", log=lambda *a: None)
    new, old = model_identity(lm), legacy_model_identity(lm)
    assert new != old                                    # the rules differ (the config is hashed differently)
    # a journal written by the earlier rule, one pass done
    j = Journal(tmp_path / "run", "x", {"model": old, "samples": "s", "opt": 1})
    j("pass-1", lambda: 0.5)
    j.close(remove=False)
    calls = []
    j = Journal(tmp_path / "run", "x", {"model": new, "samples": "s", "opt": 1},
                alt_key=lambda: {"model": old, "samples": "s", "opt": 1})
    assert j("pass-1", lambda: calls.append(1) or 0.0) == 0.5 and not calls        # resumed, not recomputed
    j("pass-2", lambda: 0.25)                                                      # rewritten under the new key
    j.close(remove=False)
    head = json.loads((tmp_path / "run" / ".resume-x.jsonl").read_text().splitlines()[0])
    assert head == {"key": {"model": new, "opt": 1, "samples": "s"}}
    assert Journal(tmp_path / "run", "x", {"model": "other", "samples": "s", "opt": 1},
                   alt_key=lambda: {"model": "other2", "samples": "s", "opt": 1}).resumed == 0
    # for_run offers exactly that alternative: a journal it would write under the earlier rule is resumed
    from prunelens.fingerprint import samples_digest
    Journal(tmp_path / "run2", "y", {"model": old, "samples": samples_digest([]), "opt": 2})("p", lambda: 7)
    j = for_run(tmp_path / "run2", "y", lm, [], opt=2)
    assert j.key["model"] == new and j.resumed == 1
    # a trajectory's stored key: accepted with the model at hand, not without it, and not for other files
    stored = {"fingerprint": {"model": old, "samples": "s"}}
    header = {"fingerprint": {"model": new, "samples": "s"}}
    assert resume_mismatch(stored, header) == ["model weights"]
    assert resume_mismatch(stored, header, lm) == []
    raw = json.loads((ck / "config.json").read_text())
    (ck / "config.json").write_text(json.dumps({**raw, "rms_norm_eps": raw["rms_norm_eps"] * 2}))
    lm2 = load_model(str(ck), device="cpu", log=lambda *a: None)
    assert resume_mismatch(stored, {"fingerprint": {"model": model_identity(lm2), "samples": "s"}}, lm2) \
        == ["model weights"]
