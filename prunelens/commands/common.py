"""Options shared by several subcommands, and the argument types every command validates its options with: a bad
value is one line naming the option (argparse adds "argument --x:"), before anything is loaded."""
from __future__ import annotations

import argparse
import json
import math
import re


# ------------------------------------------------------------------------------------------------ argument types
def _bad(msg: str):
    return argparse.ArgumentTypeError(msg)


def _int(s) -> int:
    try:
        return int(str(s).strip())
    except ValueError:
        raise _bad(f"{s!r} is not an integer") from None


def any_int(s) -> int:
    return _int(s)


def positive_int(s) -> int:
    v = _int(s)
    if v < 1:
        raise _bad(f"must be >= 1, got {v}")
    return v


def nonneg_int(s) -> int:
    v = _int(s)
    if v < 0:
        raise _bad(f"must be >= 0, got {v}")
    return v


def finite_float(s) -> float:
    try:
        v = float(str(s).strip())
    except ValueError:
        raise _bad(f"{s!r} is not a number") from None
    if not math.isfinite(v):
        raise _bad(f"must be a finite number, got {s}")
    return v


def nonneg_float(s) -> float:
    v = finite_float(s)
    if v < 0:
        raise _bad(f"must be >= 0, got {v:g}")
    return v


def positive_float(s) -> float:
    v = finite_float(s)
    if v <= 0:
        raise _bad(f"must be > 0, got {v:g}")
    return v


def open_fraction(s) -> float:
    """A fraction strictly between 0 and 1 (a pruning ratio)."""
    v = finite_float(s)
    if not 0 < v < 1:
        raise _bad(f"must lie strictly between 0 and 1, got {v:g}")
    return v


def unit_interval(s) -> float:
    v = finite_float(s)
    if not 0 <= v <= 1:
        raise _bad(f"must lie in [0, 1], got {v:g}")
    return v


def _items(s) -> list[str]:
    return [x.strip() for x in str(s).split(",") if x.strip()]


def int_list(s) -> list[int]:
    """Comma-separated integers (may be negative, e.g. a window "-2,1")."""
    return [_int(x) for x in _items(s)]


def seed_list(s) -> list[int]:
    v = int_list(s)
    if len(set(v)) != len(v):
        raise _bad(f"repeated value in {s!r}")
    return v


def nonneg_int_list(s) -> list[int]:
    v = int_list(s)
    neg = [x for x in v if x < 0]
    if neg:
        raise _bad(f"must be >= 0, got {neg}")
    if len(set(v)) != len(v):
        raise _bad(f"repeated value in {s!r}")
    return v


def layer_ids(s) -> list[int]:
    """Comma-separated layer ids: non-negative integers, each at most once (range checked against the model)."""
    v = []
    for x in _items(s):
        i = _int(x)
        if i < 0:
            raise _bad(f"layer id {i} is negative")
        if i in v:
            raise _bad(f"layer id {i} is given twice")
        v.append(i)
    return v


def layer_id_sets(s) -> list[list[int]]:
    """Removal sets separated by ';', e.g. '3,4;3,4,5'."""
    return [layer_ids(x) for x in str(s).split(";") if x.strip()]


def float_list(s) -> list[float]:
    return [finite_float(x) for x in _items(s)]


def nonneg_float_list(s) -> list[float]:
    return [nonneg_float(x) for x in _items(s)]


def ratio_list(s) -> list[float]:
    return [open_fraction(x) for x in _items(s)]


_DEVICE = re.compile(r"^(auto|cpu|mps|meta|(cuda|xpu|npu|hpu)(:\d+)?)$")
_DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def device_arg(s) -> str:
    s = str(s).strip()
    if not _DEVICE.match(s):
        raise _bad(f"{s!r} is not a device: auto, cpu, cuda, cuda:N (or mps)")
    return s


def device_map_type(s):
    """--device-map: a strategy name or a JSON object {module: device}, devices checked here."""
    from ..model.load import check_device_map
    s = str(s).strip()
    if s.startswith("{"):
        try:
            dm = json.loads(s)
        except json.JSONDecodeError as e:
            raise _bad(f"not valid JSON: {e}") from None
    else:
        dm = s
    try:
        return check_device_map(dm)
    except ValueError as e:
        raise _bad(str(e).removeprefix("--device-map").lstrip(": ")) from None


DTYPE_CHOICES = ["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"]


def _common_out(p: argparse.ArgumentParser, help: str | None = None, required: bool = True) -> None:
    p.add_argument("--out", required=required, help=help)
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of a previous run in --out (otherwise an existing run is refused)")


def prepare_out(a, *inputs, resume: str | None = None, kind: str = "dir", out=None):
    """Check --out before anything is loaded: writable, not overlapping an input, no previous run unless
    --overwrite (or, for resumable commands, a run of the same command to continue). inputs: (option, path)."""
    from ..results import prepare_out as _prepare
    return _prepare(out if out is not None else a.out, overwrite=getattr(a, "overwrite", False), resume=resume,
                    inputs=inputs, kind=kind)


def model_inputs(a) -> list[tuple[str, object]]:
    """The local paths an analysis command reads (for the output-overlap check)."""
    out = [("--model", getattr(a, "model", None))]
    for opt in ("data_dir", "task", "trajectory", "dense_from", "offload_folder", "calib", "cache_dir"):
        v = getattr(a, opt, None)
        if v:
            out.append(("--" + opt.replace("_", "-"), v))
    for t in str(getattr(a, "tasks", "") or "").split(","):
        if t.strip():
            out.append(("--tasks", t.strip()))
    return out


def _common_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="gemma-3-270m",
                   help="hub id, local checkpoint folder, .gguf file, or a built-in alias: gemma-3-270m, smollm2-135m")
    p.add_argument("--device", default="auto", type=device_arg, help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16, float16")
    p.add_argument("--trust-remote-code", action="store_true", help="run model code from the checkpoint (off)")
    p.add_argument("--device-map", default=None, type=device_map_type,
                   help="accelerate device_map for big models: auto, balanced, sequential, or a JSON object "
                        "{module: device} (multi-GPU / CPU / disk offload)")
    p.add_argument("--offload-folder", default=None, help="where layers mapped to \"disk\" are offloaded")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--add-bos", default="auto", choices=["auto", "yes", "no"],
                   help="start contexts with BOS: auto = as the tokenizer does (always for Gemma, as lm-eval)")


def device_map_arg(a):
    """--device-map as load_model takes it: None, a strategy name, or the parsed JSON mapping (parsed and checked
    by `device_map_type`; a string set programmatically is parsed here the same way)."""
    dm = getattr(a, "device_map", None)
    if isinstance(dm, str):
        try:
            return device_map_type(dm)
        except argparse.ArgumentTypeError as e:
            raise ValueError(f"--device-map: {e}") from None
    return dm


def load_lm(a):
    """The model as every analysis command's model options describe it."""
    from ..model import load_model
    return load_model(a.model, device=a.device, dtype=a.dtype, trust_remote_code=a.trust_remote_code,
                      device_map=device_map_arg(a), offload_folder=a.offload_folder)


def ints(s) -> list[int]:
    """An option already parsed by an int-list type (a list), or a string (API callers)."""
    if isinstance(s, (list, tuple)):
        return list(s)
    return int_list(s) if s else []


def floats(s) -> list[float]:
    if isinstance(s, (list, tuple)):
        return list(s)
    return float_list(s)


def task_kw(a) -> dict:
    return {"split": a.split, "data_dir": a.data_dir, "limit": a.limit, "sample": a.sample, "seed": a.seed}


def _common_measure(p: argparse.ArgumentParser) -> None:
    """How a state is measured: which cloze score drives DM/OF/accuracy, and the margin. Analyses that compare
    against a `prune`/`analyze` run must use the same pair, so every measuring command takes both."""
    p.add_argument("--score", default="raw", choices=["raw", "norm"],
                   help="cloze score driving DM/OF/accuracy: raw sum log-prob (lm-eval acc) or per-character "
                        "(acc_norm)")
    p.add_argument("--margin", default="logit", choices=["logit", "prob"])


def measure_kw(a) -> dict:
    return {"score_kind": a.score, "margin": a.margin}


def add_bos_arg(a) -> bool | None:
    return {"auto": None, "yes": True, "no": False}[getattr(a, "add_bos", "auto")]


def _common_task(p: argparse.ArgumentParser, multi: bool = False) -> None:
    if multi:
        p.add_argument("--tasks", required=True, help="comma-separated task names or custom .yaml specs")
    else:
        p.add_argument("--task", default="arc_easy", help="built-in task name or a custom task .yaml spec")
    p.add_argument("--format", default="cloze", choices=["letter", "cloze"])
    p.add_argument("--split", default=None)
    p.add_argument("--data-dir", default=None, help="folder in the public layouts of the benchmarks")
    p.add_argument("--limit", type=positive_int, default=None, help="first N samples")
    p.add_argument("--sample", type=positive_int, default=None, help="seeded random subset of N samples")
    p.add_argument("--seed", type=any_int, default=0)
