"""Resume after a kill (journal.py): a long run killed mid-way continues from its journal, recomputes only the passes
that were not finished, and writes exactly what an uninterrupted run writes."""
import json

import numpy as np
import pytest

from helpers import tiny_lm, tiny_samples
from prunelens.journal import Journal, NoJournal


class Killed(Exception):
    pass


class Counting(Journal):
    """A journal that counts the passes it computes and, like a kill, stops the run after `kill_after` of them."""

    def __init__(self, *a, kill_after=None, **k):
        super().__init__(*a, **k)
        self.computed, self.kill_after = 0, kill_after

    def __call__(self, key, compute):
        def c():
            if self.kill_after is not None and self.computed == self.kill_after:
                raise Killed
            self.computed += 1
            return compute()
        return super().__call__(key, c)


def test_journal_records_resumes_and_ignores_other_runs(tmp_path):
    j = Journal(tmp_path, "x", {"model": "m", "n": 1})
    assert j(("a", 1), lambda: {"v": np.float64(0.1) + 0.2, "arr": np.arange(3.0), "nan": float("nan")}) == \
        {"v": 0.1 + 0.2, "arr": [0.0, 1.0, 2.0], "nan": pytest.approx(float("nan"), nan_ok=True)}
    j(("a", 2), lambda: [1, 2])
    j.close(remove=False)
    with open(j.path, "a") as f:                  # a kill in the middle of a line
        f.write('["[\\"a\\", 3]", [1,')
    k = Journal(tmp_path, "x", {"n": 1, "model": "m"})          # the same key, in another order
    assert k.resumed == 2 and ("a", 1) in k and ("a", 3) not in k
    assert k(("a", 1), lambda: pytest.fail("recomputed a recorded pass"))["v"] == 0.1 + 0.2    # exact round trip
    assert k(("a", 3), lambda: 7) == 7
    k.close(remove=False)
    assert Journal(tmp_path, "x", {"model": "m", "n": 1}).resumed == 3        # the cut line was dropped on rewrite
    other = Journal(tmp_path, "x", {"model": "other", "n": 1})                # another run: nothing reused
    assert other.resumed == 0 and other(("a", 1), lambda: 5) == 5
    other.close()
    assert not other.path.exists()
    assert NoJournal()(("a",), lambda: (1, np.float32(2))) == [1, 2.0]       # the same JSON values without a file


def _same(a: dict, b: dict):
    a, b = ({k: v for k, v in x.items() if k != "seconds"} for x in (a, b))
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _kill_then_resume(tmp_path, run, kill_after):
    """run(journal) -> result. Returns (reference result, resumed result, passes computed after the kill, total)."""
    ref = Counting(tmp_path / "ref", "t", {"k": 0})
    want = run(ref)
    j = Counting(tmp_path / "run", "t", {"k": 0}, kill_after=kill_after)
    with pytest.raises(Killed):
        run(j)
    j.close(remove=False)
    again = Counting(tmp_path / "run", "t", {"k": 0})
    assert again.resumed == kill_after
    got = run(again)
    return want, got, again.computed, ref.computed


def test_controls_resume_after_a_kill(tmp_path):
    from prunelens.analyses.controls import run_controls
    lm, S = tiny_lm("llama"), tiny_samples(8)

    def run(j):
        return run_controls(lm, S, counts=[1, 2], seeds=(0, 1), n_boot=50, progress=False, journal=j)
    want, got, after, total = _kill_then_resume(tmp_path, run, kill_after=2)
    _same(want, got)
    assert after == total - 2 and total > 2               # distinct removal sets: shared ones run once


def test_skip_effects_resume_after_a_kill(tmp_path):
    from prunelens.causal import skip_effects
    lm, S = tiny_lm("llama"), tiny_samples(8)
    L = lm.anatomy.num_layers

    def run(j):
        return skip_effects(lm, S, "cloze", n_boot=50, batch_size=3, progress=False, journal=j)
    want, got, after, total = _kill_then_resume(tmp_path, run, kill_after=2)  # 3 batches of sums, then L decisions
    _same(want, got)
    assert total == 3 + L and after == total - 2


def test_restore_and_plan_resume_after_a_kill(tmp_path):
    from prunelens.causal import restore_curve
    from prunelens.plan.run import single_removals
    lm, S = tiny_lm("llama"), tiny_samples(8)

    def restore(j):
        return restore_curve(lm, S, "cloze", [1, 2], tp=2, n_boot=50, batch_size=4, progress=False, journal=j)
    want, got, after, total = _kill_then_resume(tmp_path / "r", restore, kill_after=3)
    _same(want, got)
    assert after == total - 3 and total > 3

    def plan(j):
        d, s = single_removals(lm, S, "cloze", batch_size=4, progress=False, journal=j)
        return {"dense": d.tolist(), "single": s.tolist()}
    want, got, after, total = _kill_then_resume(tmp_path / "p", plan, kill_after=2)
    _same(want, got)
    assert total == lm.anatomy.num_layers and after == total - 2


def test_a_killed_command_continues_in_its_folder_and_cleans_up(tmp_path, monkeypatch):
    """Through the orchestration layer: the journal lives in the run folder, a folder holding only a journal is
    accepted without --overwrite, and a finished run leaves no journal behind."""
    from prunelens import journal as J
    from prunelens.analyses import run as R
    from prunelens.results import prepare_out
    from prunelens.tasks import Task
    lm, S = tiny_lm("llama"), tiny_samples(6)
    monkeypatch.setattr(R, "_task", lambda *a, **k: Task("tiny", "test", "tests", S, ("acc",)))
    out = tmp_path / "c"
    real = J.Journal.__call__
    n = {"calls": 0}

    def dying(self, key, compute):
        if key not in self and n["calls"] == 1:
            raise Killed
        n["calls"] += key not in self
        return real(self, key, compute)
    monkeypatch.setattr(J.Journal, "__call__", dying)
    with pytest.raises(Killed):
        R.run_controls(out, task="tiny", counts=[1, 2], seeds=(0, 1), lm=lm, progress=False)
    assert [p.name for p in out.iterdir()] == [".resume-controls.jsonl"]
    prepare_out(out)                                          # resumable: no --overwrite needed
    monkeypatch.setattr(J.Journal, "__call__", real)
    res = R.run_controls(out, task="tiny", counts=[1, 2], seeds=(0, 1), lm=lm, progress=False)
    assert (out / "controls.json").is_file() and not (out / ".resume-controls.jsonl").exists()
    fresh = R.run_controls(tmp_path / "fresh", task="tiny", counts=[1, 2], seeds=(0, 1), lm=lm, progress=False)
    assert res["methods"] == fresh["methods"] and res["dense"] == fresh["dense"]


def test_ablation_and_noise_resume_after_a_kill(tmp_path):
    from prunelens.analyses.ablation import transition_ablation
    from prunelens.analyses.noise import noise_grid
    lm, S = tiny_lm("llama", num_layers=6), tiny_samples(8)

    def ablate(j):
        return transition_ablation(lm, {"a": S, "b": S[:5]}, "cloze", tp=3, n_boot=50, batch_size=4, progress=False,
                                   journal=j)
    want, got, after, total = _kill_then_resume(tmp_path / "a", ablate, kill_after=3)
    _same(want, got)
    assert total == 2 * (len(want["rows"]) - 1) and after == total - 3

    def noise(j):
        r = noise_grid(lm, S, "cloze", alphas=(0.5, 1.0), depths=[1, 4], seeds=(0, 1), tp=3, batch_size=4,
                       progress=False, journal=j)
        return {k: r[k] for k in ("dm", "acc", "dm_mean", "acc_std")}
    want, got, after, total = _kill_then_resume(tmp_path / "n", noise, kill_after=5)
    np.testing.assert_array_equal(np.asarray(want["dm"]), np.asarray(got["dm"]))
    _same(want, got)
    assert total == 8 and after == 3


def test_recovery_resumes_after_a_kill(tmp_path):
    pytest.importorskip("peft", reason="LoRA recovery needs peft (pip install peft)")
    from prunelens.analyses.recovery import recover
    lm, S = tiny_lm("llama"), tiny_samples(10)

    def run(j):
        r = recover(lm, S, S[:5], "cloze", removals=[[1], [1, 2], [3]], steps=4, lr=1e-2, batch_size=4, n_boot=20,
                    full_depth=False, progress=False, journal=j)
        for x in r["runs"]:
            x.pop("seconds")
        return r
    want, got, after, total = _kill_then_resume(tmp_path, run, kill_after=2)
    _same(want, got)
    assert total == 3 and after == 1


def test_a_noise_cell_is_reused_only_with_its_own_draw(tmp_path):
    """A noise cell's draw is seeded by the position of its alpha in the list: a rerun with another alpha list must
    recompute the cells whose seed changed, never reuse them."""
    from prunelens.analyses.noise import noise_grid
    lm, S = tiny_lm("llama"), tiny_samples(6)
    kw = dict(depths=[2], seeds=(0,), tp=2, batch_size=3, progress=False)
    j = Counting(tmp_path, "n", {"k": 0})
    noise_grid(lm, S, "cloze", alphas=(0.5, 1.0), journal=j, **kw)
    j.computed = 0
    got = noise_grid(lm, S, "cloze", alphas=(1.0,), journal=j, **kw)            # 1.0 moved from index 1 to 0
    assert j.computed == 1
    fresh = noise_grid(lm, S, "cloze", alphas=(1.0,), **kw)
    np.testing.assert_array_equal(got["dm"], fresh["dm"])


def test_the_prefix_store_stays_within_its_memory_bound():
    """Over max_bytes the shallowest depth is dropped whole and passes that would start there run whole; the
    numbers do not change (plan's single removals with a store too small for every depth)."""
    import torch

    from prunelens.engine.prefix import DensePrefix
    from prunelens.plan.run import single_removals
    p = DensePrefix("cloze", depths=[1, 2, 3], max_bytes=100)
    for d in (1, 2, 3):
        p.put(d, (0, 0), torch.zeros(10))                  # 40 bytes each: the third put drops depth 1
    assert p.dropped == {1} and p.at(1) is None and p.at(2) is not None and p.bytes == 80
    assert DensePrefix.start([], 6) == 0 and DensePrefix.start([5], 6) == 4 and DensePrefix.start([2, 5], 6) == 2
    lm, S = tiny_lm("llama", num_layers=5), tiny_samples(6)
    full = DensePrefix("cloze", max_bytes=2**30)
    single_removals(lm, S, "cloze", batch_size=3, progress=False, prefix=full)
    small = DensePrefix("cloze", max_bytes=full.bytes // 2)
    d0, s0 = single_removals(lm, S, "cloze", batch_size=3, progress=False, prefix=small)
    assert not full.dropped and 1 in small.dropped and small.bytes <= full.bytes // 2
    assert small.at(4) is not None
    d1, s1 = single_removals(lm, S, "cloze", batch_size=3, progress=False, prefix=DensePrefix("cloze", max_bytes=0))
    np.testing.assert_array_equal(d0, d1)
    np.testing.assert_allclose(s0, s1, atol=1e-5)
