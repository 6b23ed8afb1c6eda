"""End to end on a tiny checkpoint folder: a custom JSONL task, `prunelens analyze` from the CLI, the output
schema, and bad input failing with one clear line before any compute."""
import json

import numpy as np
import pytest
import torch

from helpers import tiny_lm, tiny_samples
from prunelens.cli import main
from prunelens.engine.lens import Lens
from prunelens.engine.capture import capture_residuals
from prunelens.metrics.estimators import NAMES
from tiny import _ITEMS, save_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_model("qwen3", tmp_path_factory.mktemp("m") / "qwen3")


@pytest.fixture
def custom_task(tmp_path):
    rows = [{"question": q, "options": o, "answer": a} for q, o, a in _ITEMS[:10]]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "qa.yaml").write_text("name: qa\ndata: qa.jsonl\ncontext: \"Question: {question}\\nAnswer:\"\n"
                                      "choices: options\ngold: answer\n")
    return tmp_path / "qa.yaml"


@pytest.mark.parametrize("fmt", ["cloze", "letter"])
def test_cli_analyze_writes_schema(ckpt, custom_task, tmp_path, fmt, capsys):
    out = tmp_path / f"out_{fmt}"
    rc = main(["analyze", "--model", str(ckpt), "--tasks", str(custom_task), "--format", fmt, "--out", str(out),
               "--n-boot", "100", "--device", "cpu"])
    assert rc == 0
    res = json.loads((out / "analysis.json").read_text())
    for key in ("model", "task", "format", "split", "n_samples", "num_layers", "transition_point", "silent_phase",
                "decisive_phase", "depths"):
        assert key in res
    assert res["n_samples"] == 10 and res["num_layers"] == 4 and len(res["depths"]) == 5
    for d in res["depths"]:
        for key in ("depth", "dm_mean", "dm_median", "dm_ci", "acc", "option_frequency", "kl_to_labels", "entropy"):
            assert key in d
        assert d["dm_ci"][0] <= d["dm_mean"] <= d["dm_ci"][1]
        assert abs(sum(d["option_frequency"]) - 1) < 1e-9
    tp = res["transition_point"]
    dm = [d["dm_mean"] for d in res["depths"]]
    if tp is None:
        assert dm[-1] <= 0
    else:
        assert all(x > 0 for x in dm[tp:]) and (tp == 0 or dm[tp - 1] <= 0)
    for f in ("samples.csv", "dm_by_depth.png", "of_heatmap.png", "kl_by_depth.png"):
        assert (out / f).is_file()
    printed = capsys.readouterr().out
    assert "analysis.json" in printed
    # Both chance levels, counted here from the task's rows; the warning exactly when the accuracy CI reaches one.
    rows = [(o, a) for _, o, a in _ITEMS[:10]]
    golds = [o.index(a) if isinstance(a, str) else a for o, a in rows]
    lv = res["chance_levels"]
    assert lv["uniform"] == pytest.approx(np.mean([1 / len(o) for o, _ in rows]))
    assert lv["constant"] == pytest.approx(max(golds.count(j) for j in set(golds)) / 10)
    from scipy.stats import binomtest                      # the Wilson bound, computed independently
    lo = binomtest(round(res["acc"] * 10), 10).proportion_ci(method="wilson").low
    assert res["above_chance"] == (lo > max(lv["uniform"], lv["constant"]))
    assert ("warning: at chance" in printed) == (not res["above_chance"])
    from prunelens.analyze import chance_of_run          # the scripts' gate, from the saved files alone
    assert chance_of_run(out)[0] == res["above_chance"]
    # The TP CI measured in-process equals the one recomputed from samples.csv alone (same seed and resamples).
    assert main(["transition", str(out), "--n-boot", "100"]) == 0
    from prunelens.analyze import transition_from_run
    again = transition_from_run(out, n_boot=100)
    assert again["transition_point"] == tp
    assert again["tp_ci"] == res["tp_ci"] and again["tp_boot_counts"] == res["tp_boot_counts"]
    # The other transition estimators: in analysis.json, and the same again from samples.csv alone.
    est = res["estimators"]
    assert {"mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint"} <= set(est)
    assert est["mean_dm_tp"]["point"] == tp and est["mean_dm_tp"]["ci"] == res["tp_ci"]
    assert all(e["verdict"] in ("identified", "not identified at this n") for k, e in est.items() if k in NAMES)
    assert again["estimators"] == est
    assert "decision_depth.png" in res["plots"] and (out / "decision_depth.png").is_file()
    assert "decision depth (gold)" in capsys.readouterr().out
    assert sum(res["tp_boot_counts"].values()) == 100
    with pytest.raises(ValueError, match="tau"):
        transition_from_run(out, tau=0.5, n_boot=100, write=True)


def test_cli_bad_task_file_is_one_clear_error(ckpt, tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"question": "q", "options": ["a", "b"], "answer": 0}\n{"question": \n')
    (tmp_path / "bad.yaml").write_text("data: bad.jsonl\ncontext: \"{question}\"\nchoices: options\ngold: answer\n")
    out = tmp_path / "o"
    rc = main(["analyze", "--model", str(ckpt), "--tasks", str(tmp_path / "bad.yaml"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.jsonl" in err and ":2" in err and "Traceback" not in err
    assert not out.exists()          # failed before writing anything


def test_cli_missing_model_folder(tmp_path, capsys):
    # the validation split: available without ../shared (the package copy), so the model is the only bad input
    rc = main(["analyze", "--model", str(tmp_path / "nope"), "--tasks", "arc_easy", "--split", "validation",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "nope" in capsys.readouterr().err


def test_lens_runs_in_fp32_for_bf16_models():
    lm32 = tiny_lm("llama")
    lm16 = tiny_lm("llama")
    lm16.model.to(torch.bfloat16)
    ids = lm32.tokenizer("Question: What is the capital city of France?\nAnswer:", return_tensors="pt").input_ids
    pos = torch.arange(ids.shape[1])[None]
    outs = []
    for lm in (lm32, lm16):
        with capture_residuals(lm.anatomy, pos) as cap:
            lm.anatomy.base(input_ids=ids)
        z = Lens(lm.anatomy).logits(cap.stacked()[0, -1])
        assert z.dtype == torch.float32
        outs.append(z)
    # bf16 weights and activations, fp32 lens math: close to the fp32 model, not bit-equal
    assert (outs[0] - outs[1]).abs().max() < 0.1
    lp, _ = Lens(lm16.anatomy).token_logprobs(torch.randn(3, 64, dtype=torch.bfloat16), torch.zeros(3, 1).long())
    assert lp.dtype == torch.float32 and torch.isfinite(lp).all()


def test_transition_from_run_keeps_the_runs_sample_order(tmp_path):
    """Ids whose sorted order differs from the run's ("10" < "2"): the CLI recompute must resample rows in the
    file's (= measure's) order, or its CI would differ from the one measured in-process with the same seed."""
    import pandas as pd
    from prunelens.analyze import transition_from_run
    from prunelens.metrics import transition_point_bootstrap
    from prunelens.results import write_json
    rng = np.random.default_rng(0)
    ids = [str(i) for i in (2, 10, 7, 1, 30, 4, 11, 3)]
    dm = rng.normal(0.1, 1.0, size=(len(ids), 5))                     # a wide TP distribution
    rows = [{"sample_id": s, "depth": d, "dm": dm[i, d]} for i, s in enumerate(ids) for d in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    write_json(tmp_path / "analysis.json", {"n_samples": len(ids), "tau": 0.0})
    got = transition_from_run(tmp_path, n_boot=200, seed=3)
    want = transition_point_bootstrap(dm, 0.0, 200, seed=3)
    assert got["tp_boot_counts"] == want["tp_boot_counts"] and got["tp_ci"] == want["tp_ci"]
    assert len(want["tp_boot_counts"]) > 1                          # the order matters for this data


class _Killed(BaseException):
    """A kill mid-run (BaseException, as KeyboardInterrupt: no handler of the CLI catches it)."""


@pytest.mark.parametrize("fmt", ["cloze", "letter"])
def test_scoring_in_journaled_parts_matches_one_pass_and_resumes_exactly(tmp_path, fmt, monkeypatch):
    """`analyze` scores in parts of CHUNK questions, each recorded in the run's journal: the parts together give the
    one-pass scores (to padding noise; parts whose questions have fewer options are padded back), and a run killed
    after its first part computes only the others when rerun, with the uninterrupted run's exact numbers."""
    import prunelens.analyze as A
    from prunelens.engine.score import score
    from prunelens.journal import Journal
    lm, S = tiny_lm("llama", num_layers=3), tiny_samples(12)
    whole = score(lm, S, fmt, batch_size=4, progress=False)
    kw = dict(batch_size=4, progress=False)
    parts = A.score_in_parts(lm, S, fmt, Journal(tmp_path / "a", "analyze", {"k": 1}), chunk=5, **kw)
    assert parts.scores.shape == whole.scores.shape and parts.depths == whole.depths
    np.testing.assert_allclose(parts.scores, whole.scores, atol=1e-4, equal_nan=True)
    for name in ("final_greedy", "n_tokens"):
        a, b = getattr(parts, name), getattr(whole, name)
        assert (a is None and b is None) or np.array_equal(a, b)
    # killed during the second part, then rerun: only parts 2 and 3 are computed, the numbers are the same
    calls = []
    real = A.score

    def dying(*a, **k):
        calls.append(len(a[1]))
        if len(calls) == 2:
            raise _Killed
        return real(*a, **k)
    monkeypatch.setattr(A, "score", dying)
    with pytest.raises(_Killed):
        A.score_in_parts(lm, S, fmt, Journal(tmp_path / "b", "analyze", {"k": 1}), chunk=5, **kw)
    calls.clear()

    def counting(*a, **k):
        calls.append(len(a[1]))
        return real(*a, **k)
    monkeypatch.setattr(A, "score", counting)
    again = A.score_in_parts(lm, S, fmt, Journal(tmp_path / "b", "analyze", {"k": 1}), chunk=5, **kw)
    assert calls == [5, 2]
    for name in ("scores", "norm", "final_loglik", "final_greedy", "n_tokens"):
        a, b = getattr(again, name), getattr(parts, name)
        assert (a is None and b is None) or np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name


def test_cli_analyze_resumes_from_its_journal_and_removes_it(ckpt, custom_task, tmp_path, capsys, monkeypatch):
    import prunelens.analyze as A
    out = tmp_path / "out"
    args = ["analyze", "--model", str(ckpt), "--tasks", str(custom_task), "--out", str(out), "--n-boot", "50",
            "--device", "cpu", "--batch-size", "4"]
    monkeypatch.setattr(A, "CHUNK", 4)
    import prunelens.commands.analyze  # noqa: F401  (CHUNK is read from the module at call time)
    real, n = A.score, []

    def dying(*a, **k):
        n.append(1)
        if len(n) == 2:
            raise _Killed
        return real(*a, **k)
    monkeypatch.setattr(A, "score", dying)
    with pytest.raises(_Killed):
        main(args)
    assert list(out.glob(".resume-analyze.jsonl")) and not (out / "analysis.json").exists()
    monkeypatch.setattr(A, "score", real)
    assert main([*args, "--overwrite"]) == 0
    assert "resuming, 1 pass(es) already done" in capsys.readouterr().out
    assert (out / "analysis.json").is_file() and not list(out.glob(".resume-*"))
