"""Sweeps: spec expansion, the in-process backend, resume, and the Ray backend on a local Ray instance with two
workers (started by the test) giving the same numbers as the in-process runs."""

import pytest

from prunelens.cli import main
from prunelens.sweep import expand, run_sweep
from helpers import write_tiny_qa
from tiny import save_model


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    task = d / "tinyqa.jsonl"
    write_tiny_qa(task, 6)
    models = [str(save_model(f, d / f, num_layers=3)) for f in ("llama", "gemma3")]
    return {"models": models, "tasks": [str(task)],
            "methods": ["dense", {"name": "drop1", "remove": [1]}, {"name": "rand1", "random": 1}],
            "seeds": [0], "eval": {"batch_size": 4}, "load": {"device": "cpu"}}


def _metrics(rows):
    return {r["run_id"]: (r["acc"], r["acc_norm"], r["removed"]) for r in rows}


def test_expand_and_validation(spec):
    runs = expand(spec)
    assert len(runs) == 6 and len({r.run_id for r in runs}) == 6
    with pytest.raises(ValueError, match="unknown keys"):
        expand({**spec, "modles": []})
    with pytest.raises(ValueError, match="unique"):
        expand({**spec, "methods": ["dense", "dense"]})


def test_local_then_resume_then_ray(spec, tmp_path):
    local = run_sweep(spec, tmp_path / "local")
    assert len(local) == 6
    for r in local:
        d = tmp_path / "local" / "runs" / r["run_id"]
        assert (d / "results.json").is_file() and (d / "samples_tinyqa.jsonl").is_file() and (d / "run.json").is_file()
    assert {tuple(r["removed"]) for r in local} >= {(), (1,)}
    # resume: nothing left to run; a run folder without run.json is redone
    (tmp_path / "local" / "runs" / local[0]["run_id"] / "run.json").unlink()
    logs = []
    again = run_sweep(spec, tmp_path / "local", log=logs.append)
    assert "5 already done, 1 to run" in logs[0] and _metrics(again) == _metrics(local)

    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    one = {**spec, "models": spec["models"][:1]}        # 3 runs: keeps worker start-up and model loads few
    try:
        dist = run_sweep(one, tmp_path / "ray", backend="ray", cpus_per_run=1)
    finally:
        ray.shutdown()
    assert len(dist) == 3 and _metrics(dist) == {k: v for k, v in _metrics(local).items() if k in _metrics(dist)}
    assert len({r["pid"] for r in dist}) == 2          # two workers shared the runs


def test_cli_sweep(spec, tmp_path, capsys):
    import yaml
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump({**spec, "models": spec["models"][:1], "methods": ["dense"],
                                 "out": str(tmp_path / "o")}))
    assert main(["sweep", str(p)]) == 0
    assert "acc=" in capsys.readouterr().out
    assert (tmp_path / "o" / "summary.jsonl").is_file()


def test_resume_refuses_other_weights_and_other_data(tmp_path):
    import json
    task = write_tiny_qa(tmp_path / "tinyqa.jsonl", 6)
    model = save_model("llama", tmp_path / "llama", num_layers=3)
    one = {"models": [str(model)], "tasks": [str(task)], "methods": ["dense"], "eval": {"batch_size": 4},
           "load": {"device": "cpu"}}
    out = tmp_path / "o"
    first = run_sweep(one, out, log=lambda *_: None)
    meta = out / "runs" / first[0]["run_id"] / "run.json"
    stored = meta.read_text()
    logs = []
    assert _metrics(run_sweep(one, out, log=logs.append)) == _metrics(first)    # unchanged: kept, not redone
    assert "1 already done, 0 to run" in logs[0] and meta.read_text() == stored
    good = task.read_text()
    task.write_text(good.replace('"answer": 1}', '"answer": 0}', 1))           # same file name, other data
    with pytest.raises(ValueError, match="different task samples"):
        run_sweep(one, out, log=lambda *_: None)
    task.write_text(good)
    meta.write_text(json.dumps({k: v for k, v in json.loads(stored).items() if k != "fingerprint"}))
    with pytest.raises(ValueError, match="fingerprint"):                         # written before fingerprints
        run_sweep(one, out, log=lambda *_: None)
    meta.write_text(stored)
    save_model("llama", model, num_layers=3, seed=1)                           # same path, other weights
    with pytest.raises(ValueError, match="different model weights"):
        run_sweep(one, out, log=lambda *_: None)
    assert meta.read_text() == stored                                          # the finished run is untouched
