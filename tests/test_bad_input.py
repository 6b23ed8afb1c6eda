"""Bad input, faults and security (issue 15): one corpus per class of fault. Every CLI case asserts exit code != 0,
exactly one line on stderr naming the problem, no traceback, and that nothing already written was lost.

Classes: security (no pickle is ever read from a run folder), data loss (existing runs, atomic runs, outputs
overlapping inputs), silent wrong results (resume keys, duplicate layer ids, missing weights, non-finite numbers),
late errors (unwritable --out before the model loads), tracebacks (missing/corrupt weights, offline hub ids, devices,
Ctrl-C, corrupt caches, trajectory types), inputs longer than the model, and messages that name the option.
"""
import json
import pickle
import time

import numpy as np
import pytest

from helpers import tiny_lm, tiny_samples, write_tiny_qa
from prunelens.cli import main
from tiny import save_model


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_model("llama", tmp_path_factory.mktemp("bad") / "llama", num_layers=3)


@pytest.fixture
def task(tmp_path):
    return write_tiny_qa(tmp_path / "qa.jsonl", 6)


@pytest.fixture
def no_model_load(monkeypatch):
    """Any model load fails the test loudly: the error must come before it."""
    import transformers

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the input error was found")
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)


def one_line_error(args, capsys, *needles, rc=2):
    """Run the CLI; assert exit code, a single error line on stderr containing every needle, no traceback (progress
    bars and library warnings may also be on stderr)."""
    capsys.readouterr()
    got = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("prunelens")]
    assert got == rc, (got, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


def snapshot(d):
    """{relative path: bytes} of every file under d (to prove nothing was lost or changed)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def analyze_args(ckpt, task, out, *extra):
    return [str(a) for a in ("analyze", "--model", ckpt, "--tasks", task, "--device", "cpu", "--n-boot", "20", "--out",
                             out, *extra)]


class Task:
    name, split, source = "tiny", "x", "tiny"

    def __init__(self, n=6, samples=None):
        self.samples = samples or tiny_samples(n)


def _prune(lm, out, task=None, **kw):
    from prunelens.prune.run import prune
    kw = {"steps": 2, "n_boot": 20, "plots": False, "log": lambda *a: None, **kw}
    return prune("tiny", "tiny", "iterative", out, lm=lm, task_obj=task or Task(), **kw)[0]


class Killed(Exception):
    pass


def _kill_after(n):
    calls = []

    def die(_t):
        calls.append(1)
        if len(calls) == n:
            raise Killed
    return die


# ------------------------------------------------------------------------------------------------ security
class _Exploit:
    """Unpickling this creates `marker` (what a crafted run folder could do with any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pickle_in_run_folder_is_never_unpickled(tmp_path):
    lm = tiny_lm("llama", num_layers=4)
    out = tmp_path / "run"
    with pytest.raises(Killed):
        _prune(lm, out, on_state=_kill_after(1))
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"x": _Exploit(marker)})
    for name in (".resume-cache.pkl", ".resume-cache.npz"):     # the old name and the new one
        (out / name).write_bytes(payload)
    logs = []
    t = _prune(lm, out, log=logs.append)
    assert t["status"] == "complete" and not marker.exists()
    assert any("unreadable resume cache" in str(x) for x in logs)
    # the shared --cache-dir file too
    cache = tmp_path / "shared"
    _prune(lm, tmp_path / "a", cache_dir=cache)
    for f in cache.iterdir():
        f.write_bytes(payload)
    _prune(lm, tmp_path / "b", cache_dir=cache)
    assert not marker.exists()


def test_cache_file_with_object_arrays_is_refused(tmp_path):
    from prunelens.prune.cache import CacheFileError, PrefixCache
    p = tmp_path / "c.npz"
    np.savez(p, index=np.array("{}"), a0=np.array([_Exploit(tmp_path / "m")], dtype=object))
    with pytest.raises(CacheFileError, match="unreadable resume cache"):
        PrefixCache().load_small(p)
    assert not (tmp_path / "m").exists()


def test_cache_round_trip_is_exact(tmp_path):
    from prunelens.prune.cache import PrefixCache
    c = PrefixCache()
    key = ("eval", (0, (1, ((1, 0.5), (2, 0.25))), 3))
    c.put(key, np.array([[0.1, np.nan], [-np.inf, 1e-300]]))
    c.put(("cos", 0, (0, 1)), (0.1 + 0.2, 7))
    c.put(("nll", (0,)), float("nan"))
    c.save_small(tmp_path / "c.npz", "k1")
    d = PrefixCache()
    assert not d.load_small(tmp_path / "c.npz", "other-key") and not d.small      # another run's cache: unused
    assert d.load_small(tmp_path / "c.npz", "k1")
    np.testing.assert_array_equal(d.small[key], c.small[key])
    assert d.small[("cos", 0, (0, 1))] == (0.1 + 0.2, 7) and np.isnan(d.small[("nll", (0,))])


def test_no_unsafe_deserialisation_in_the_package():
    """Static guard: no pickle, no yaml.load, no torch.load without weights_only, no allow_pickle=True."""
    import re
    from pathlib import Path
    import prunelens
    root = Path(prunelens.__file__).parent
    bad = []
    for f in root.rglob("*.py"):
        src = f.read_text()
        for pat in (r"\bimport pickle\b", r"pickle\.loads?\(", r"yaml\.load\(", r"allow_pickle\s*=\s*True",
                    r"trust_remote_code\s*:\s*bool\s*=\s*True", r"torch\.load\((?![^)]*weights_only\s*=\s*True)"):
            if re.search(pat, src):
                bad.append(f"{f.relative_to(root)}: {pat}")
    assert not bad, bad


# ------------------------------------------------------------------------------------------------ data loss
def test_existing_run_is_refused_then_overwritten(ckpt, task, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(analyze_args(ckpt, task, out)) == 0
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    one_line_error(analyze_args(ckpt, task, out), capsys, "--out", "already holds", "--overwrite")
    assert snapshot(out) == before
    # --overwrite replaces the run: a stale file of the previous run (listed in its manifest) goes, the user's stays
    manifest = json.loads((out / ".prunelens-run.json").read_text())
    assert "analysis.json" in manifest["files"]
    (out / "old_plot.png").write_bytes(b"x")
    manifest["files"].append("old_plot.png")
    (out / ".prunelens-run.json").write_text(json.dumps(manifest))
    assert main(analyze_args(ckpt, task, out, "--overwrite")) == 0
    assert not (out / "old_plot.png").exists() and (out / "notes.txt").read_text() == "mine"
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_failed_run_leaves_the_previous_one_intact(tmp_path):
    from prunelens.analyses.run import _finish
    out = tmp_path / "o"
    _finish(out, "cka", {"v": 1}, [])
    before = snapshot(out)

    def half_written(res, d):
        (d / "fig.png").write_bytes(b"new")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        _finish(out, "cka", {"v": 2}, [half_written])
    assert snapshot(out) == before and not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(RuntimeError):
        _finish(tmp_path / "new", "cka", {"v": 2}, [half_written])
    assert not (tmp_path / "new").exists()             # a failed first run leaves no folder behind


def test_export_onto_its_source_checkpoint_is_refused(ckpt, tmp_path, capsys, no_model_load):
    before = snapshot(ckpt)
    one_line_error(["export", "--model", ckpt, "--remove", "1", "--out", ckpt, "--overwrite"], capsys,
                   "--out", "is the input --model")
    one_line_error(["export", "--model", ckpt, "--remove", "1", "--out", ckpt.parent, "--overwrite"], capsys,
                   "contains the input --model")
    assert snapshot(ckpt) == before


def test_export_api_refuses_its_source(ckpt):
    from prunelens.model import load_model
    from prunelens.prune.export import export_pruned
    from prunelens.results import OutputError
    lm = load_model(str(ckpt), device="cpu", verify=False)
    before = snapshot(ckpt)
    with pytest.raises(OutputError, match="source checkpoint"):
        export_pruned(lm, [1], ckpt)
    assert snapshot(ckpt) == before


@pytest.mark.parametrize("opt", ["--tasks", "--data-dir"])
def test_out_equal_to_an_input_is_refused(ckpt, task, tmp_path, capsys, no_model_load, opt):
    args = analyze_args(ckpt, task, task.parent, "--overwrite")       # --out: the folder holding the task file
    if opt == "--data-dir":
        args += ["--data-dir", task.parent]                            # ... and the data folder itself
    before = snapshot(tmp_path)
    one_line_error(args, capsys, "--out", "input", opt)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("where", ["is", "contains"])
def test_out_overlapping_the_data_folder_from_the_environment_is_refused(ckpt, tmp_path, capsys, no_model_load,
                                                                          monkeypatch, where):
    data = tmp_path / "data"                                           # without --data-dir, tasks come from here
    data.mkdir()
    (data / "keep.txt").write_text("task files")
    monkeypatch.setenv("PRUNELENS_DATA_DIR", str(data))
    out = data if where == "is" else tmp_path
    before = snapshot(tmp_path)
    one_line_error(analyze_args(ckpt, "arc_easy", out, "--overwrite"), capsys, "--out", f"{where} the input",
                   "$PRUNELENS_DATA_DIR")
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------ silent wrong results
def test_resume_refuses_other_weights_and_other_data(tmp_path):
    lm = tiny_lm("llama", num_layers=4)
    out = tmp_path / "run"
    with pytest.raises(Killed):
        _prune(lm, out, on_state=_kill_after(1))
    other = tiny_lm("llama", num_layers=4, seed=1)
    with pytest.raises(ValueError, match="model weights"):
        _prune(other, out)
    s = tiny_samples(6)
    changed = s[:5] + [type(s[5])(s[5].id, s[5].contexts, s[5].continuations, s[5].choices,
                                  (s[5].gold + 1) % s[5].n_options, s[5].letter_prompt)]
    with pytest.raises(ValueError, match="task samples"):
        _prune(lm, out, task=Task(samples=changed))
    # a trajectory from before fingerprints cannot be verified either
    t = json.loads((out / "trajectory.json").read_text())
    del t["fingerprint"]
    (out / "trajectory.json").write_text(json.dumps(t))
    with pytest.raises(ValueError, match="fingerprint"):
        _prune(lm, out)
    assert _prune(lm, out, overwrite=True)["status"] == "complete"     # --overwrite starts afresh


@pytest.mark.parametrize("ids", [[1, 1], [0, 2, 0], ["1"], [1.0], [True], [7]])
def test_bad_layer_ids_in_the_python_api(ids, tmp_path):
    from prunelens.model.surgery import keep_from_remove
    from prunelens.prune.export import export_pruned
    with pytest.raises(ValueError, match="twice|more than once|integers|out of range"):
        keep_from_remove(ids, 4)
    lm = tiny_lm("llama", num_layers=4)
    with pytest.raises(ValueError):
        export_pruned(lm, ids, tmp_path / "e")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("removed", [[1, 1], ["1"], [1.5], "1", [None]])
def test_bad_trajectory_layer_ids(ckpt, tmp_path, capsys, removed, no_model_load):
    t = {"schema": "prunelens.trajectory/1", "num_layers": 3, "dense": {"removed": []},
         "steps": [{"removed": removed, "ratio": 0.33, "merges": {}}]}
    (tmp_path / "trajectory.json").write_text(json.dumps(t))
    one_line_error(["export", "--model", ckpt, "--trajectory", tmp_path, "--step", "1", "--out", tmp_path / "e"],
                   capsys, "trajectory.json")
    assert not (tmp_path / "e").exists()
    from prunelens.analyses.trajectories import load_trajectory
    with pytest.raises(ValueError, match="trajectory.json step 1"):
        load_trajectory(tmp_path)


def test_checkpoint_with_fewer_layers_than_its_config(tmp_path, capsys, task):
    from prunelens.model import load_model
    from prunelens.model.load import ModelLoadError
    ck = save_model("llama", tmp_path / "short", num_layers=2)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["num_hidden_layers"] = 3
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"lacks .*layers\.2\."):
        load_model(str(ck), device="cpu")
    one_line_error(analyze_args(ck, task, tmp_path / "o"), capsys, "--model", "lacks", "random weights")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [
    (["--tau", "nan"], "--tau"), (["--tau", "inf"], "--tau"), (["--tau", "-1"], "--tau"),
    (["--batch-size", "0"], "--batch-size"), (["--n-boot", "0"], "--n-boot"), (["--limit", "0"], "--limit"),
    (["--sample", "-3"], "--sample"), (["--seed", "x"], "--seed"), (["--device", "gpu0"], "--device"),
    (["--device-map", '{"model.layers.0": "gpu"}'], "--device-map"), (["--device-map", "everywhere"], "--device-map"),
    (["--dtype", "float64"], "--dtype"), (["--format", "essay"], "--format")])
def test_analyze_option_values(ckpt, task, tmp_path, capsys, no_model_load, args, needle):
    one_line_error(analyze_args(ckpt, task, tmp_path / "o", *args), capsys, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("cmd", [
    ["prune", "--method", "iterative", "--ratio", "nan"], ["prune", "--method", "iterative", "--ratio", "1"],
    ["prune", "--method", "iterative", "--remove-count", "0"],
    ["prune", "--method", "laco", "--remove-count", "1", "--laco-t", "nan"],
    ["prune", "--method", "mka", "--remove-count", "1", "--mka-lambda", "2"],
    ["prune", "--method", "iterative", "--remove-count", "1", "--skip", "--skip-delta", "nan"],
    ["prune", "--method", "random", "--remove-count", "1", "--seeds", "1,1"],
    ["prune", "--method", "iterative", "--remove-count", "1", "--cache-mb", "-5"],
    ["eval", "--tasks", "arc_easy", "--num-fewshot", "-1"], ["eval", "--tasks", "arc_easy", "--remove", "1,1"],
    ["eval", "--tasks", "arc_easy", "--remove", "a,b"], ["eval", "--tasks", "arc_easy", "--limit", "-2"],
    ["cka", "--remove", "1", "--ratio", "5"], ["cka", "--remove", "1,x"], ["noise", "--alphas", "1,nan"],
    ["noise", "--depths", "-1"], ["ablate", "--tasks", "arc_easy", "--window", "1,x"],
    ["controls", "--counts", "1,1"], ["recover", "--ratios", "0.2,1.5"], ["recover", "--remove", "1,1;2"],
    ["recover", "--lr", "0"], ["export", "--remove", "1,1"], ["export", "--remove", "-1"],
    ["correlate", "x", "--gamma", "2"]])
def test_option_values_of_every_command(ckpt, tmp_path, capsys, no_model_load, cmd):
    opt = next(a for a in reversed(cmd) if a.startswith("--"))
    extra = ["--model", str(ckpt)] if cmd[0] not in ("correlate",) else []
    one_line_error([*cmd, *extra, "--out", tmp_path / "o"], capsys, opt)
    assert not (tmp_path / "o").exists()


def test_prune_api_rejects_non_finite_numbers(tmp_path):
    lm = tiny_lm("llama", num_layers=4)
    for kw, msg in (({"tau": float("nan")}, "--tau"), ({"n_boot": 0}, "--n-boot"), ({"laco_t": float("inf")},
                    "--laco-t"), ({"batch_size": 0}, "--batch-size"), ({"skip_delta": float("nan"), "skip": True},
                                                                        "--skip-delta")):
        with pytest.raises(ValueError, match=msg):
            _prune(lm, tmp_path / "p", **kw)
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------------------------------------ late errors
@pytest.mark.parametrize("where", ["file", "parent_file", "read_only"])
def test_unwritable_out_fails_before_loading(ckpt, task, tmp_path, capsys, monkeypatch, no_model_load, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    out = {"file": blocker, "parent_file": blocker / "sub" / "o", "read_only": tmp_path / "ro" / "o"}[where]
    if where == "read_only":
        import errno
        import tempfile as tf
        from pathlib import Path
        real = tf.mkstemp

        def ro(*a, dir=None, **k):           # a read-only mount (root ignores chmod, so it is simulated)
            if dir is not None and Path(dir) == tmp_path:
                raise OSError(errno.EROFS, "Read-only file system")
            return real(*a, dir=dir, **k)
        monkeypatch.setattr(tf, "mkstemp", ro)
    for cmd in (analyze_args(ckpt, task, out),
                ["prune", "--model", ckpt, "--tasks", task, "--method", "tail", "--remove-count", "1", "--out", out],
                ["eval", "--model", ckpt, "--tasks", task, "--out", out],
                ["export", "--model", ckpt, "--remove", "1", "--out", out],
                ["report", tmp_path, "--out", out]):
        one_line_error(cmd, capsys, "--out")
    assert blocker.read_text() == "keep me"


# ------------------------------------------------------------------------------------------------ tracebacks
def test_missing_and_corrupt_weights(ckpt, task, tmp_path, capsys):
    import shutil
    empty = tmp_path / "noweights"
    empty.mkdir()
    shutil.copy(ckpt / "config.json", empty / "config.json")
    one_line_error(analyze_args(empty, task, tmp_path / "o1"), capsys, "--model")
    bad = tmp_path / "corrupt"
    shutil.copytree(ckpt, bad)
    w = next(bad.glob("*.safetensors"))
    w.write_bytes(b"\x00garbage" * 100)
    one_line_error(analyze_args(bad, task, tmp_path / "o2"), capsys, "--model")
    (bad / "config.json").write_text("{not json")
    one_line_error(analyze_args(bad, task, tmp_path / "o3"), capsys, "--model")
    assert not any((tmp_path / f"o{i}").exists() for i in (1, 2, 3))


def test_hub_id_offline_fails_fast(task, tmp_path, capsys, monkeypatch, no_model_load):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    one_line_error(analyze_args("no-such-org/no-such-model-xyz", task, tmp_path / "o"), capsys, "HF_HUB_OFFLINE",
                   "no-such-org/no-such-model-xyz")
    assert time.time() - t0 < 10


def test_ctrl_c_keeps_the_stored_steps_and_resumes(ckpt, task, tmp_path, capsys, monkeypatch):
    from prunelens.prune import trajectory as tj
    out = tmp_path / "p"
    args = ["prune", "--model", ckpt, "--tasks", task, "--device", "cpu", "--method", "tail", "--remove-count", "2",
            "--n-boot", "20", "--out", out]
    real, calls = tj._record, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:                    # after the dense state was stored
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(tj, "_record", interrupted)
    one_line_error(args, capsys, "interrupted", "resume", rc=130)
    t = json.loads((out / "trajectory.json").read_text())
    assert t["status"] == "running" and t["dense"] is not None
    monkeypatch.setattr(tj, "_record", real)
    capsys.readouterr()
    assert main([str(a) for a in args]) == 0
    assert json.loads((out / "trajectory.json").read_text())["status"] == "complete"
    # a finished run in the folder is resumed (nothing to do); a folder holding another command's run is refused
    assert main([str(a) for a in args]) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "analysis.json").write_text("{}")
    one_line_error([*map(str, args[:-1]), str(other)], capsys, "already holds")
    assert (other / "analysis.json").read_text() == "{}"


def test_corrupt_trajectory_is_one_line(ckpt, task, tmp_path, capsys, no_model_load):
    out = tmp_path / "p"
    out.mkdir()
    (out / "trajectory.json").write_text('{"steps": [')
    one_line_error(["export", "--model", ckpt, "--trajectory", out, "--step", "1", "--out", tmp_path / "e"], capsys,
                   "trajectory.json", "not a valid JSON")
    one_line_error(["cka", "--model", ckpt, "--tasks", task, "--trajectory", out, "--ratio", "0.5", "--out",
                    tmp_path / "c"], capsys, "trajectory.json")


# ------------------------------------------------------------------------------------------------ long inputs
def test_prompt_longer_than_the_model(ckpt, tmp_path, capsys):
    from prunelens.model import load_model
    from prunelens.tasks.base import TaskError
    from prunelens.tasks.limits import check_lengths
    rows = [{"question": "What is two plus two?", "choices": ["four", "five"], "answer": 0},
            {"question": "Why " + "really " * 600 + "?", "choices": ["yes", "no"], "answer": 1}]
    p = tmp_path / "long.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    one_line_error(analyze_args(ckpt, p, tmp_path / "o"), capsys, "sample '1'", "tokens", "512 positions")
    one_line_error(["eval", "--model", ckpt, "--tasks", p, "--device", "cpu", "--out", tmp_path / "e"], capsys,
                   "sample '1'")
    one_line_error(["prune", "--model", ckpt, "--tasks", p, "--device", "cpu", "--method", "tail", "--remove-count", "1",
                    "--out", tmp_path / "pr"], capsys, "sample '1'")
    assert not any((tmp_path / d).exists() for d in ("o", "e", "pr"))
    # a multi-megabyte row is refused by its size, without tokenising it
    lm = load_model(str(ckpt), device="cpu", verify=False)
    from prunelens.tasks import load_task
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"question": "x" * 4_000_000, "choices": ["a", "b"], "answer": 0}) + "\n")
    t0 = time.time()
    with pytest.raises(TaskError, match="characters"):
        check_lengths(lm, load_task(str(huge)).samples, "cloze")
    assert time.time() - t0 < 5


# ------------------------------------------------------------------------------------------------ messages
def test_messages_name_the_option(ckpt, task, tmp_path, capsys, no_model_load):
    one_line_error(analyze_args(ckpt, task, tmp_path / "o", "--sample", "900"), capsys, "--sample 900 > 6 questions")
    one_line_error(["export", "--model", ckpt, "--remove", "1,x", "--out", tmp_path / "e"], capsys,
                   "--remove", "'x' is not an integer")
    many = tmp_path / "many.jsonl"
    many.write_text(json.dumps({"question": "q", "choices": [f"c{i}" for i in range(27)], "answer": 0}) + "\n")
    one_line_error(analyze_args(ckpt, many, tmp_path / "o", "--format", "letter"), capsys,
                   "at most 26 options")
    assert not (tmp_path / "o").exists()


def test_fewshot_pool_too_small_and_sweep_counts(tmp_path):
    from prunelens.evaluate.fewshot import with_fewshot
    from prunelens.sweep.spec import expand
    from prunelens.tasks.base import TaskError
    s = tiny_samples(3)
    with pytest.raises(TaskError, match="--num-fewshot 5: the few-shot pool has 3"):
        with_fewshot(s, s, 5)
    for m in ({"name": "r", "random": 0}, {"name": "r", "last": "2"}, {"name": "r", "remove": [1, 1]},
              {"name": "r", "remove": "1,a"}):
        with pytest.raises(ValueError, match="sweep method 'r'"):
            expand({"models": ["m"], "tasks": ["t"], "methods": [m]})
