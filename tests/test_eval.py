"""`prunelens eval` on tiny models: lm-eval-shaped outputs, per-sample log-likelihoods equal to a plain forward,
metrics from the per-sample numbers, pruned views (--remove, --trajectory) without exporting."""
import json

import numpy as np
import pytest

from helpers import plain_cloze_scores, tiny_samples, write_tiny_qa
from prunelens.cli import main
from prunelens.evaluate import run_eval
from prunelens.evaluate.run import metrics_from
from prunelens.model import load_model
from prunelens.model.surgery import pruned_view
from tiny import save_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    ckpt = save_model("gemma3", d / "gemma3", num_layers=4)
    task = d / "tinyqa.jsonl"
    write_tiny_qa(task, 10)
    return ckpt, task, load_model(str(ckpt), device="cpu")


def _samples(out, name):
    return [json.loads(x) for x in (out / f"samples_{name}.jsonl").read_text().splitlines()]


def test_results_schema_and_samples(setup, tmp_path):
    ckpt, task, lm = setup
    res = run_eval(str(ckpt), [str(task)], tmp_path, lm=lm, batch_size=3, progress=False)
    disk = json.loads((tmp_path / "results.json").read_text())
    r = disk["results"]["tinyqa"]
    assert {"acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none"} <= set(r)
    assert disk["n-samples"]["tinyqa"] == {"original": 10, "effective": 10}
    assert disk["n-shot"]["tinyqa"] == 0 and disk["versions"]["tinyqa"] == 1.0
    assert {"config", "date", "transformers_version", "configs"} <= set(disk)
    assert disk["config"]["pruned"] is None and res["results"] == disk["results"]
    recs = _samples(tmp_path, "tinyqa")
    assert [x["doc_id"] for x in recs] == list(range(10))
    # lm-eval layout: resps [[[ll, greedy]]] per option, filtered_resps [[ll, greedy]] per option
    for x in recs:
        k = len(x["doc"]["choices"])
        assert len(x["resps"]) == len(x["filtered_resps"]) == len(x["arguments"]) == k
        assert all(len(rr) == 1 and len(rr[0]) == 2 for rr in x["resps"])
        assert isinstance(x["filtered_resps"][0][1], bool)
    # metrics are the mean of the per-sample ones, with lm-eval's stderr (ddof=1)
    acc = np.array([x["acc"] for x in recs])
    assert r["acc,none"] == pytest.approx(acc.mean())
    assert r["acc_stderr,none"] == pytest.approx(acc.std(ddof=1) / np.sqrt(len(acc)))
    # per-sample log-likelihoods equal a plain one-forward-per-option computation
    plain = plain_cloze_scores(lm.model, lm.tokenizer, tiny_samples(10))[:, -1]
    ours = np.full_like(plain, np.nan)
    for i, x in enumerate(recs):
        ours[i, :len(x["filtered_resps"])] = [v[0] for v in x["filtered_resps"]]
    np.testing.assert_allclose(ours, plain, atol=1e-4)


def test_limit_and_acc_norm_from_lengths(setup):
    ckpt, task, lm = setup
    res = run_eval(str(ckpt), str(task), None, lm=lm, limit=4, progress=False)
    assert res["n-samples"]["tinyqa"] == {"original": 10, "effective": 4}
    ll = np.array([[-3.0, -6.0, np.nan], [-2.0, -2.0, -9.0]])
    m, _ = metrics_from(ll, [("abc", "abcdefgh"), ("a", "b", "c")], np.array([1, 0]), ("acc", "acc_norm"))
    assert m["acc"] == 0.5        # row 1: tie -> lowest index, as np.argmax
    assert m["acc_norm"] == 1.0   # row 0: -6/8 > -3/3


def _plain_pruned(lm, keep):
    with pruned_view(lm, keep):
        return plain_cloze_scores(lm.model, lm.tokenizer, tiny_samples(10))[:, -1]


def test_pruned_view_remove_and_trajectory(setup, tmp_path):
    ckpt, task, lm = setup
    res = run_eval(str(ckpt), str(task), tmp_path / "r", lm=lm, remove="1,2", progress=False)
    assert res["config"]["pruned"]["keep"] == [0, 3] and res["config"]["pruned"]["removed"] == [1, 2]
    assert lm.anatomy.num_layers == 4                      # the view was left
    recs = _samples(tmp_path / "r", "tinyqa")
    plain = _plain_pruned(lm, [0, 3])
    for i, x in enumerate(recs):
        np.testing.assert_allclose([v[0] for v in x["filtered_resps"]], plain[i, :len(x["filtered_resps"])],
                                   atol=1e-4)
    traj = tmp_path / "traj"
    traj.mkdir()
    (traj / "trajectory.json").write_text(json.dumps({"dense": {"removed": []},
                                                              "steps": [{"removed": [2]}, {"removed": [1, 2]}]}))
    res2 = run_eval(str(ckpt), str(task), None, lm=lm, trajectory=str(traj), step=2, progress=False)
    assert res2["results"] == res["results"]
    with pytest.raises(ValueError):
        run_eval(str(ckpt), str(task), None, lm=lm, trajectory=str(traj), step=5, progress=False)


def test_cli_eval(setup, tmp_path, capsys):
    ckpt, task, _ = setup
    rc = main(["eval", "--model", str(ckpt), "--device", "cpu", "--tasks", str(task), "--limit", "5",
               "--remove", "3", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "|Tasks|Version|Filter|n-shot|Metric|" in out and "|tinyqa|" in out
    assert (tmp_path / "results.json").is_file() and (tmp_path / "samples_tinyqa.jsonl").is_file()
    assert main(["eval", "--model", str(ckpt), "--tasks", "no_such_task", "--out", str(tmp_path)]) == 2
