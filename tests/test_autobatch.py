"""`--batch-size auto` (prunelens/engine/autobatch.py): out-of-memory simulated by a forward that fails above a batch
size; the result equals the fixed-batch one, the recorded size is the largest that fits, finished work is kept."""
import argparse
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers import tiny_lm, tiny_samples
from prunelens.engine import autobatch
from prunelens.engine.score import score


def _oom_above(lm, limit: int, make_error):
    """Make the context forward (no KV cache passed in) fail when it holds more than `limit` rows; count calls."""
    calls = {"ok": [], "failed": []}

    def hook(_mod, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        cached = kwargs.get("cache", kwargs.get("past_key_values")) is not None
        if not cached:
            if ids.shape[0] > limit:
                calls["failed"].append(ids.shape[0])
                raise make_error()
            calls["ok"].append(ids.shape[0])

    return lm.anatomy.base.register_forward_pre_hook(hook, with_kwargs=True), calls


def _cuda_oom():
    cls = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return cls("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")


def _cpu_oom():
    return RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                        "you tried to allocate 8589934592 bytes (simulated)")


def _same(a, b):
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5, equal_nan=True)
    if a.norm is not None:
        np.testing.assert_allclose(a.norm, b.norm, rtol=1e-5, atol=1e-5, equal_nan=True)
        np.testing.assert_allclose(a.final_loglik, b.final_loglik, rtol=1e-5, atol=1e-5, equal_nan=True)
        np.testing.assert_array_equal(a.final_greedy, b.final_greedy)
        np.testing.assert_array_equal(a.n_tokens, b.n_tokens)
    np.testing.assert_array_equal(a.gold, b.gold)
    np.testing.assert_array_equal(a.n_options, b.n_options)
    assert a.ids == b.ids and a.depths == b.depths


@pytest.mark.parametrize("fmt,make_error,limit", [("cloze", _cuda_oom, 5), ("letter", _cpu_oom, 3)])
def test_auto_equals_fixed_and_records_largest_that_fits(monkeypatch, fmt, make_error, limit):
    lm = tiny_lm("llama")
    samples = tiny_samples(20)
    fixed = score(lm, samples, fmt, batch_size=4, progress=False)
    monkeypatch.setattr(autobatch, "CHUNK_BATCHES", 1)      # one batch per chunk: the search is visible per batch
    handle, calls = _oom_above(lm, limit, make_error)
    try:
        auto = score(lm, samples, fmt, batch_size="auto", progress=False)
    finally:
        handle.remove()
    _same(auto, fixed)
    assert auto.info["batch_size"] == limit                  # the largest that fits, not only a power of two
    info = auto.info["batch_size_auto"]
    assert info["start"] == min(len(samples), autobatch.START_CPU)
    assert info["out_of_memory_at"] and all(b > limit for b in info["out_of_memory_at"])
    assert max(calls["ok"]) == limit
    # every sample's context ran exactly once in a successful batch: finished batches were not redone
    assert sum(calls["ok"]) == len(samples)
    # a later call on the same model starts from the size found and never retries one known to fail
    handle, calls = _oom_above(lm, limit, make_error)
    try:
        again = score(lm, samples, fmt, batch_size="auto", progress=False)
    finally:
        handle.remove()
    assert again.info["batch_size"] == limit and again.info["batch_size_auto"]["out_of_memory_at"] == []
    assert not calls["failed"]
    _same(again, fixed)


def test_auto_without_memory_pressure_keeps_chunks_and_order():
    lm = tiny_lm("qwen3")
    samples = tiny_samples(13)
    fixed = score(lm, samples, "cloze", batch_size=16, progress=False)
    auto = score(lm, samples, "cloze", batch_size="auto", progress=False, depths=None)
    _same(auto, fixed)
    assert auto.info["batch_size"] == 13 and auto.info["batch_size_auto"]["out_of_memory_at"] == []


def test_other_errors_and_batch_one_oom_propagate():
    lm = tiny_lm("llama")
    samples = tiny_samples(6)
    handle, _ = _oom_above(lm, 0, _cuda_oom)                 # nothing fits, not even one row
    try:
        with pytest.raises(RuntimeError, match="out of memory"):
            score(lm, samples, "letter", batch_size="auto", progress=False)
    finally:
        handle.remove()
    lm = tiny_lm("llama")
    handle, _ = _oom_above(lm, 2, lambda: RuntimeError("shape mismatch (a bug, not memory)"))
    try:
        with pytest.raises(RuntimeError, match="shape mismatch"):
            score(lm, samples, "letter", batch_size="auto", progress=False)
    finally:
        handle.remove()


def test_is_oom():
    assert autobatch.is_oom(_cuda_oom()) and autobatch.is_oom(_cpu_oom()) and autobatch.is_oom(MemoryError())
    assert not autobatch.is_oom(RuntimeError("expected scalar type Float")) and not autobatch.is_oom(ValueError("x"))


def test_option_type_analyze_record_and_prune_refusal(tmp_path, monkeypatch):
    from prunelens.analyze import analyze
    from prunelens.cli import build_parser
    from prunelens.commands.common import batch_size_arg
    from prunelens.prune.run import check_values

    assert batch_size_arg("auto") == "auto" and batch_size_arg(" AUTO ") == "auto" and batch_size_arg("3") == 3
    for bad in ("0", "-1", "big"):
        with pytest.raises(argparse.ArgumentTypeError):
            batch_size_arg(bad)
    a = build_parser().parse_args(["analyze", "--batch-size", "auto", "--out", str(tmp_path / "o")])
    assert a.batch_size == "auto"
    check_values(batch_size="auto")                    # prune resolves it (test_prune_auto_batch_size_...)
    with pytest.raises(ValueError, match="--batch-size must be an integer"):
        check_values(batch_size=0)

    # analysis.json records the size used
    lm = tiny_lm("llama")
    samples = tiny_samples(8)
    monkeypatch.setattr(autobatch, "CHUNK_BATCHES", 1)
    handle, _ = _oom_above(lm, 3, _cuda_oom)
    try:
        task = SimpleNamespace(name="tiny", split="test", source="tests", samples=samples)
        res = analyze("tiny", "tiny", "cloze", tmp_path / "run", lm=lm, task_obj=task, batch_size="auto",
                      n_boot=20, plots=False, progress=False)
    finally:
        handle.remove()
    assert res["config"]["batch_size"] == 3
    assert res["config"]["batch_size_auto"]["out_of_memory_at"][0] == 8


def test_eval_accepts_auto_and_records_the_size(tmp_path, monkeypatch):
    from helpers import write_tiny_qa
    from prunelens.evaluate import run_eval
    from prunelens.model import load_model
    from tiny import save_model

    ckpt = save_model("llama", tmp_path / "ckpt")
    task = write_tiny_qa(tmp_path / "tinyqa.jsonl", 10)
    lm = load_model(str(ckpt), device="cpu")
    fixed = run_eval(str(ckpt), [str(task)], None, lm=lm, batch_size=4, progress=False)
    monkeypatch.setattr(autobatch, "CHUNK_BATCHES", 1)
    handle, _ = _oom_above(lm, 4, _cuda_oom)
    try:
        auto = run_eval(str(ckpt), [str(task)], None, lm=lm, batch_size="auto", progress=False)
    finally:
        handle.remove()
    assert auto["config"]["batch_size"] == 4
    for k, v in fixed["results"]["tinyqa"].items():
        if isinstance(v, float):
            assert auto["results"]["tinyqa"][k] == pytest.approx(v, abs=1e-9), k
        else:
            assert auto["results"]["tinyqa"][k] == v, k


def test_prune_auto_batch_size_is_searched_once_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    """prune --batch-size auto: the out-of-memory search runs once, on the longest questions; the size is fixed for
    the whole trajectory (its states are keyed by batches), recorded in params, and a resumed run keeps it."""
    from prunelens.prune.run import prune

    class Task:
        name, split, source = "tiny", "x", "tiny"
        samples = tiny_samples(8)

    lm = tiny_lm("llama")
    monkeypatch.setattr(autobatch, "CHUNK_BATCHES", 1)
    handle, calls = _oom_above(lm, 3, _cuda_oom)
    kw = dict(lm=lm, task_obj=Task(), ratio=0.5, n_boot=20, plots=False, log=lambda *a: None)
    try:
        t = prune("tiny", "tiny", "iterative", tmp_path / "p", batch_size="auto", **kw)[0]
        assert t["params"]["batch_size"] == 3 and t["params"]["batch_size_auto"] is True
        assert max(calls["ok"]) == 3                      # after the search no forward holds more than 3 rows
        ref = prune("tiny", "tiny", "iterative", tmp_path / "fixed", batch_size=3, **kw)[0]
        assert [s["removed"] for s in t["steps"]] == [s["removed"] for s in ref["steps"]]
        lm._prunelens_autobatch = {"lo": None, "hi": None}   # a new process: nothing remembered on the model
        n_failed = len(calls["failed"])
        again = prune("tiny", "tiny", "iterative", tmp_path / "p", batch_size="auto", **kw)[0]
        assert again["params"]["batch_size"] == 3 and len(calls["failed"]) == n_failed   # no new search
    finally:
        handle.remove()
