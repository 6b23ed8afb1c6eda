"""Writing results without ever leaving a half-written file: write to a temp file, then rename."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if np.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _clean(o):
    """NaN/inf are not JSON; write them as null."""
    if isinstance(o, float) and not np.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(_clean(obj), indent=1, default=_default) + "\n")


def read_json(path):
    """A JSON file as Python; a missing, unreadable or malformed file is one ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON file ({e})") from None


def versions() -> dict:
    import torch
    import transformers

    from . import __version__
    return {"prunelens": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------ run folders
MANIFEST = ".prunelens-run.json"        # the files the last run wrote into its folder (replaced by the next one)
_STAGE = ".tmp-"                        # staging folders inside a run folder: `<out>/.tmp-<pid>-<random>`


class OutputError(ValueError):
    """An output path that cannot or must not be written (exists, overlaps an input, not writable)."""


def _visible(d: Path) -> list[str]:
    """What a folder holds for the user: not staging folders, not the resume journal of a killed run (journal.py)."""
    return sorted(p.name for p in d.iterdir() if not p.name.startswith((_STAGE, ".resume-")))


def _inside(a: Path, b: Path) -> bool:
    """a is b or lies inside b (both resolved)."""
    return a == b or b in a.parents


def prepare_out(out, *, option: str = "--out", overwrite: bool = False, resume=None, inputs=(),
                kind: str = "dir") -> Path:
    """Check an output before anything is loaded or computed; returns the resolved path. Raises OutputError when
    - the path (or a parent) is a file where a folder is needed, or the place is not writable (a probe file is
      created and removed: permissions, read-only mounts);
    - it overlaps an input: `inputs` is [(option, path)]; an input that is the output or lies inside it could be
      replaced by this run (e.g. `export --out` = the source checkpoint);
    - it already holds results (a non-empty folder / an existing file), unless `overwrite`, or `resume` (a glob or
      tuple of globs such as "trajectory.json") matches inside the folder: a resumable run of this command continues
      there (the command then checks that the stored run is the same run).
    kind: "dir" (a run folder) or "file" (one output file, e.g. report.html)."""
    out = Path(out).expanduser()
    res = out.resolve()
    for name, p in inputs:
        if p is None or str(p) == "":
            continue
        q = Path(str(p)).expanduser()
        if not q.exists():
            continue
        if _inside(q.resolve(), res):
            what = "is" if q.resolve() == res else "contains"
            raise OutputError(f"{option} {out} {what} the input {name} {p}; writing there could replace it: "
                              f"choose another {option}")
    # the nearest existing ancestor must be a folder (a file in place of a parent cannot be written under)
    probe_dir = res if kind == "dir" else res.parent
    anc = probe_dir
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"{option} {out}: {anc} is a file, not a folder")
    if kind == "dir" and res.exists() and not res.is_dir():
        raise OutputError(f"{option} {out} is a file; give a folder")
    if kind == "file" and res.is_dir():
        raise OutputError(f"{option} {out} is a folder; give a file name")
    try:
        fd, probe = tempfile.mkstemp(prefix=".prunelens-probe-", dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{option} {out}: cannot write in {anc} ({e.strerror or e})") from None
    if overwrite:
        return res
    if kind == "file":
        if res.exists():
            raise OutputError(f"{option} {out} already exists; give --overwrite to replace it")
        return res
    if res.is_dir():
        held = _visible(res)
        globs = (resume,) if isinstance(resume, str) else tuple(resume or ())
        if held and not any(any(res.glob(g)) for g in globs):
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            raise OutputError(f"{option} {out} already holds files ({shown}); give --overwrite to replace that "
                              f"run, or another {option}")
    return res


@contextlib.contextmanager
def staged(out):
    """Write a run's files into a staging folder inside `out` and move them into `out` only if the block finishes:
    a run that fails or is interrupted leaves the previous contents untouched. On success the files of the previous
    run recorded in `out/.prunelens-run.json` that this run did not write are removed (other files are kept).

        with staged(out) as d:
            write_json(d / "x.json", ...)
    """
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE}{os.getpid()}-", dir=out))
    ok = False
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        try:
            old = set(read_json(out / MANIFEST).get("files", []))
        except (OSError, ValueError, AttributeError):
            old = set()
        for n in names:
            dst = out / n
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            os.replace(stage / n, dst)
        for n in sorted(old - set(names)):
            if "/" in n or n.startswith(".") or n in ("", MANIFEST):
                continue
            p = out / n
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                p.unlink()
        write_json(out / MANIFEST, {"files": names, "date": now()})
        ok = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not ok and created:
            with contextlib.suppress(OSError):
                out.rmdir()                 # only if still empty: a failed first run leaves no folder behind
