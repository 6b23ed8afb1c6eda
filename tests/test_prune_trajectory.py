"""Trajectories: resume after a simulated kill, SKIP-Prun restarts on a hand-made stub, prefix cache == naive,
option errors before compute, and every method on a tiny model."""
import json

import pytest

from helpers import tiny_lm, tiny_samples
from prunelens.prune import trajectory as tj
from prunelens.prune.cache import PrefixCache
from prunelens.prune.run import prune
from prunelens.results import read_json


class Task:
    name, split, source = "tiny", "x", "tiny"

    def __init__(self, n=8):
        self.samples = tiny_samples(n)


def _run(lm, out, method="iterative", **kw):
    kw = {"ratio": None if "steps" in kw else 0.5, "n_boot": 50, "plots": False, "log": lambda *a: None, **kw}
    return prune("tiny", "tiny", method, out, lm=lm, task_obj=Task(), **kw)[0]


def _stable(t):
    t = json.loads(json.dumps(t))
    for k in tj.VOLATILE:
        t.pop(k, None)

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != "wall_s"}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    return strip(t)


class Killed(Exception):
    pass


@pytest.mark.parametrize("kill_at,skip", [(1, False), (3, False), (4, True)])
def test_resume_after_kill_is_identical(tmp_path, kill_at, skip):
    lm = tiny_lm("llama", num_layers=6)
    kw = {"skip": skip, "skip_delta": 0.0, "skip_restarts": 2} if skip else {}
    full = _run(lm, tmp_path / "full", **kw)
    calls = []

    def die(_t):
        calls.append(1)
        if len(calls) == kill_at:
            raise Killed

    with pytest.raises(Killed):
        _run(lm, tmp_path / "killed", on_state=die, **kw)
    assert read_json(tmp_path / "killed" / "trajectory.json")["status"] == "running"
    resumed = _run(lm, tmp_path / "killed", **kw)
    assert _stable(resumed) == _stable(full)
    assert not (tmp_path / "killed" / ".resume-cache.npz").exists()


def test_resume_refuses_other_parameters(tmp_path):
    lm = tiny_lm("llama", num_layers=4)
    _run(lm, tmp_path, steps=1)
    with pytest.raises(ValueError, match="different parameters"):
        _run(lm, tmp_path, method="shortgpt", steps=1)


@pytest.mark.parametrize("family,cache_mb", [("gemma3", 512), ("gpt2", 512), ("gemma3", 0.3)])
def test_prefix_cache_equals_naive(tmp_path, family, cache_mb):
    """Scores reused per depth prefix and scoring forwards resumed at the cut give the naive numbers; with a cache
    bound too small for every depth (0.3 of the 1.5 MB) the shallow residuals are kept and the result is unchanged."""
    lm = tiny_lm(family, num_layers=6)
    a = _run(lm, tmp_path / "a", skip=True, skip_delta=0.0, skip_restarts=2, cache_mb=cache_mb)
    b = _run(lm, tmp_path / "b", skip=True, skip_delta=0.0, skip_restarts=2, naive=True)
    st = a["runtime"]["cache"]
    assert st["hits"] > 0 and st["eval_forwards_resumed"] > 0 and not b["runtime"]["cache"]["enabled"]
    assert st["peak_mb"] <= cache_mb
    assert [s["removed"] for s in a["search"]["visited"]] == [s["removed"] for s in b["search"]["visited"]]
    for sa, sb in zip([a["dense"]] + a["steps"], [b["dense"]] + b["steps"]):
        assert sa["removed"] == sb["removed"] and sa["acc"] == sb["acc"]
        assert max(abs(x - y) for x, y in zip(sa["dm_mean"], sb["dm_mean"])) < 1e-4
        for k in sa.get("scores", {}):
            assert abs(sa["scores"][k] - sb["scores"][k]) < 1e-4


def test_skip_restart_logic_on_stub(tmp_path, monkeypatch):
    """BI fixed at {0:.5, 1:.4, 2:.1, 3:.2, 4:.3}; accuracy by removed set; delta 0.05, budget 2. Worked by hand:
    dense(.8) -> {2}(.6) dead, restart from dense -> {3}(.78) -> {3,2}(.5) dead, restart from dense (best with < 2
    removed) -> {4}(.79) -> {4,2}(.3) deteriorates but the budget is spent, so it is kept; target reached."""
    acc = {(): .8, (2,): .6, (3,): .78, (2, 3): .5, (4,): .79, (2, 4): .3}
    bi = {0: .5, 1: .4, 2: .1, 3: .2, 4: .3}
    monkeypatch.setattr(tj, "_bi", lambda ctx, st: dict(bi))
    monkeypatch.setattr(tj, "_record", lambda ctx, removed, merges, scores=None, **k:
                        {"removed": list(removed), "acc": acc[tuple(sorted(removed))]})

    class Ctx:
        L, n_remove, cache = 5, 2, PrefixCache()
    traj = {"params": {"skip": True, "skip_delta": 0.05, "skip_restarts": 2}, "dense": {"removed": [], "acc": .8},
            "steps": [], "status": "running"}
    tj._run_skip(Ctx(), tmp_path, traj, 0.0, None, lambda *a: None)
    s = traj["search"]
    assert [v["removed"] for v in s["visited"]] == [[], [2], [3], [3, 2], [4], [4, 2]]
    assert s["dead_edges"] == [[0, 2], [2, 2]]
    assert [(r["after_node"], r["from_node"]) for r in s["restarts"]] == [(1, 0), (3, 0)]
    assert [st["removed"] for st in traj["steps"]] == [[4], [3, 2]]   # best per count; sets need not nest
    assert read_json(tmp_path / "trajectory.json")["search"]["restarts"] == s["restarts"]


@pytest.mark.parametrize("kw,msg", [({"ratio": 0.0}, "strictly between"), ({"ratio": 1.0}, "strictly between"),
                                    ({"ratio": None, "steps": 4}, "every layer"),
                                    ({"ratio": None, "steps": 0}, ">= 1"),
                                    ({"method": "magic"}, "unknown method"),
                                    ({"method": "tail", "skip": True}, "iterative only")])
def test_bad_options_fail_before_compute(tmp_path, kw, msg):
    lm = tiny_lm("llama", num_layers=4)
    calls = []
    h = lm.anatomy.base.register_forward_hook(lambda *a: calls.append(1))
    kw = {"method": "iterative", **kw}
    with pytest.raises(ValueError, match=msg):
        _run(lm, tmp_path, **kw)
    h.remove()
    assert not calls and not (tmp_path / "trajectory.json").exists()


@pytest.mark.parametrize("method,kw", [("shortgpt", {}), ("angular", {}), ("sleb", {}), ("ppl", {}),
                                       ("taylor", {}), ("laco", {"laco_t": 0.0}), ("mka", {}), ("tail", {}),
                                       ("transition-aware", {}), ("ppl", {"heuristic": True, "ratio": 0.1})])
def test_every_method_writes_the_schema(tmp_path, method, kw):
    lm = tiny_lm("qwen2", num_layers=8 if kw.get("heuristic") else 4)
    t = _run(lm, tmp_path, method, **kw)
    assert t["status"] == "complete" and t["model_path"] == "qwen2" and t["steps"]
    for s in t["steps"]:
        for k in ("scores", "removed", "ratio", "acc", "dm_final", "transition_point", "dm_mean", "acc_by_depth",
                  "option_frequency", "kl_to_labels", "wall_s"):
            assert k in s, k
        assert len(s["dm_mean"]) == t["num_layers"] - s["n_removed"] + 1
    if kw.get("heuristic"):
        assert all(4 <= i < 6 for i in t["steps"][-1]["removed"])
    if method == "laco":
        assert t["steps"][0]["merges"]


def test_random_seeds(tmp_path):
    lm = tiny_lm("llama", num_layers=6)
    ts = prune("tiny", "tiny", "random", tmp_path, lm=lm, task_obj=Task(), ratio=0.5, seeds=[0, 1], n_boot=20,
               plots=False, log=lambda *a: None)
    assert (tmp_path / "seed_0" / "trajectory.json").is_file() and (tmp_path / "seed_1" / "trajectory.json").is_file()
    assert ts[0]["steps"][-1]["removed"] != ts[1]["steps"][-1]["removed"]


def test_cli_prune_bad_ratio_and_plots(tmp_path, capsys):
    from prunelens.cli import main
    assert main(["prune", "--model", str(tmp_path / "nope"), "--method", "tail", "--ratio", "1.5",
                 "--out", str(tmp_path / "o")]) == 2
    assert "strictly between" in capsys.readouterr().err
    from prunelens.prune.plots import plot_trajectory
    lm = tiny_lm("llama", num_layers=4)
    t = _run(lm, tmp_path / "p", "tail")
    files = plot_trajectory(t, tmp_path / "p")
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    # per-depth OF and KL of the pruned states are stored and drawn; every figure has its SVG beside it
    assert all(len(s["of_by_depth"]) == len(s["kl_by_depth"]) for s in t["steps"])
    assert {"of_by_depth.png", "kl_by_depth.png", "dm_by_depth.png"} <= {f.name for f in files}
    assert all(f.with_suffix(".svg").is_file() for f in files if f.suffix == ".png")


def test_compare_summary(tmp_path):
    """`prunelens compare`: chart, removed-layer table and a summary with CIs; random seeds pooled; IP gaps."""
    from prunelens.cli import main
    lm = tiny_lm("llama", num_layers=4)
    _run(lm, tmp_path / "ip", "iterative")
    _run(lm, tmp_path / "tail", "tail")
    prune("tiny", "tiny", "random", tmp_path / "random", lm=lm, task_obj=Task(), ratio=0.5, seeds=[0, 1], n_boot=20,
          plots=False, log=lambda *a: None)
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "summary.md").read_text()
    ip = read_json(tmp_path / "ip" / "trajectory.json")
    last = ip["steps"][-1]
    assert f"| iterative | 0.50 | {' '.join(map(str, last['removed']))} | {last['acc']:.3f} [" in md
    assert "random (2 seeds)" in md and "iterative - tail" in md and "iterative - random" in md
    # every state's transition estimators, read from the step's own record (not only the mean-DM TP)
    from prunelens.metrics.estimators import estimator_cell
    row = next(r for r in md.splitlines() if r.startswith(f"| iterative | 0.50 | {' '.join(map(str, last['removed']))} |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-4:] == [estimator_cell(last["estimators"][k]) for k in
                          ("mean_dm_tp", "decision_depth_pred", "decision_depth_gold", "acc_changepoint")]
    csv = (tmp_path / "cmp" / "compare_removed.csv").read_text()
    assert "DDpred [95% CI]" in csv.splitlines()[0]
    # the paper's safe ratio (L - TP)/L exists only where the dense model has a TP
    tp = ip["dense"]["transition_point"]
    assert ip["dense"]["predicted_safe_ratio"] == (None if tp is None else (4 - tp) / 4)
    assert (tmp_path / "cmp" / "compare_acc_dm_vs_ratio.png").stat().st_size > 0
    assert main(["compare", str(tmp_path / "nothing"), "--out", str(tmp_path / "c2")]) == 2


@pytest.mark.parametrize("score_kind", ["raw", "norm"])
def test_dense_step_equals_analyze_measure(tmp_path, score_kind):
    """A trajectory's dense record is the decision lens of analyze.measure on the same samples: DM by depth, TP and
    the TP's bootstrap CI (same resamples)."""
    from prunelens.analyze import measure
    lm = tiny_lm("llama", num_layers=4)
    t = _run(lm, tmp_path, steps=1, score_kind=score_kind)
    m = measure(lm, Task().samples, "cloze", score_kind=score_kind, n_boot=50, progress=False)
    d = t["dense"]
    assert max(abs(a - b["dm_mean"]) for a, b in zip(d["dm_mean"], m.depths)) < 1e-4
    for k in ("transition_point", "tp_ci", "tp_boot_counts"):
        assert d[k] == m.summary[k], k
    # every step carries the other transition estimators beside the TP, each with its CI and verdict
    for s in [d] + t["steps"]:
        est = s["estimators"]
        assert est["mean_dm_tp"]["ci"] == s["tp_ci"] and est["mean_dm_tp"]["point"] == s["transition_point"]
        assert all("verdict" in est[k] for k in ("decision_depth_pred", "decision_depth_gold", "acc_changepoint"))


def test_resume_under_other_library_versions_is_said_and_recorded(tmp_path):
    """A run started under another transformers (same weights, same key) resumes, says so, and records from which
    step on; the trajectory itself is unchanged."""
    lm = tiny_lm("llama", num_layers=6)
    full = _run(lm, tmp_path / "full")

    def die(_t):
        raise Killed

    with pytest.raises(Killed):
        _run(lm, tmp_path / "k", on_state=die)
    p = tmp_path / "k" / "trajectory.json"
    t = read_json(p)
    t["versions"] = {**t["versions"], "transformers": "0.0.1"}
    p.write_text(json.dumps(t))
    said = []
    resumed = _run(lm, tmp_path / "k", log=said.append)
    assert any("other library versions" in s and "transformers 0.0.1 -> " in s for s in said)
    assert [r["from_step"] for r in resumed["resumed_under"]] == [len(t["steps"])]
    assert _stable(resumed) == _stable(full)
    # resumed under the versions it was started with: nothing said
    said.clear()
    _run(lm, tmp_path / "full", log=said.append)
    assert not any("other library versions" in s for s in said)


def test_a_trajectory_keyed_by_the_earlier_identity_rule_resumes_with_its_cache(tmp_path):
    """A running trajectory stored before the JSON rule (byte-rule model identity, its cache under that key) resumes
    on the same checkpoint files, keeps its cached numbers, ends equal to an uninterrupted run, and is stored under
    the current identity."""
    import json as _json

    import numpy as np

    from prunelens.fingerprint import legacy_model_identity, model_identity
    from prunelens.model.load import load_model
    from tiny import save_model
    lm = load_model(str(save_model("llama", tmp_path / "ck", num_layers=6)), device="cpu", log=lambda *a: None)
    full = _run(lm, tmp_path / "full")

    def die(_t):
        raise Killed

    with pytest.raises(Killed):
        _run(lm, tmp_path / "k", on_state=die)
    p, cache = tmp_path / "k" / "trajectory.json", tmp_path / "k" / tj.CACHE_FILE
    t = read_json(p)
    new_key = tj._cache_key(t)
    t["fingerprint"]["model"] = legacy_model_identity(lm)          # as the earlier rule stored it
    p.write_text(_json.dumps(t))
    with np.load(cache, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    index = _json.loads(str(arrays["index"][()]))
    assert index["key"] == new_key and index["entries"]
    arrays["index"] = np.array(_json.dumps({**index, "key": tj._cache_key(t)}))
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)
    said = []
    resumed = _run(lm, tmp_path / "k", log=said.append)
    assert any("rule before 2026-12-08" in s for s in said)
    assert not any("another run ignored" in s for s in said)       # the cache was read under its stored key
    assert resumed["runtime"]["cache"]["small_entries"] >= len(index["entries"])
    assert _stable(resumed) == _stable(full)
    assert read_json(p)["fingerprint"]["model"] == model_identity(lm)
