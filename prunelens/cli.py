"""Command line: `prunelens <command>`. Each command lives in prunelens/commands/<name>.py with a `register`
function, and is a thin wrapper over a documented Python function.

Registration is import-light: command modules import torch, transformers and the engine inside their command
functions only, so `prunelens --help` and `--version` answer without loading them (tests/test_install.py)."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# One module per subcommand; a module that is not there yet is simply not offered.
COMMANDS = ["analyze", "prune", "compare", "export", "eval", "cka", "noise", "ablate", "correlate", "recover", "restore",
            "skips", "readout", "plan", "plan_eval", "report", "sweep"]


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage is one `--help` away), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    ap = _Parser(prog="prunelens", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=f"prunelens {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"prunelens.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"prunelens.commands.{name}":
                raise
            continue
        mod.register(sub)
    return ap


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.filename and str(e.filename) not in text:
        text = f"{e.filename}: {text}"
    return text[:2000]


def main(argv=None) -> int:
    """Exit codes: 0 done, 2 bad input (one line on stderr, nothing written), 130 interrupted (Ctrl-C: the steps a
    resumable run already stored are kept). PRUNELENS_DEBUG=1 re-raises instead, with the traceback."""
    from .tasks.base import TaskError
    try:
        a = build_parser().parse_args(argv)
    except SystemExit as e:              # a bad option (one line already printed) or --help: the code, as an int
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except ModuleNotFoundError as e:
        if os.environ.get("PRUNELENS_DEBUG") or _missing_dependency(e) is None:
            raise
        print(f"prunelens: error: {_missing_dependency(e)}", file=sys.stderr)
        return 1
    try:
        return a.func(a) or 0
    except ModuleNotFoundError as e:
        if os.environ.get("PRUNELENS_DEBUG") or _missing_dependency(e) is None:
            raise
        print(f"prunelens {a.cmd}: error: {_missing_dependency(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if os.environ.get("PRUNELENS_DEBUG"):
            raise
        kept = " (stored steps are kept: rerun the same command to resume)" if a.cmd in ("prune", "sweep") else ""
        print(f"prunelens {a.cmd}: interrupted{kept}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - only input errors (below) become one line; anything else re-raises
        if os.environ.get("PRUNELENS_DEBUG"):
            raise
        # AnatomyError is looked up only if its module was loaded (it imports torch, which --help must not).
        anatomy = sys.modules.get("prunelens.model.anatomy")
        input_errors = (TaskError, ValueError, OSError) + ((anatomy.AnatomyError,) if anatomy else ())
        if isinstance(e, input_errors):
            # OSError: missing/unreadable files, permissions, a full disk, HF hub errors (missing repo, offline).
            # ValueError includes JSON/YAML syntax errors (json.JSONDecodeError) and every prunelens input error.
            # User errors get one clear line, not a traceback from deep inside torch.
            print(f"prunelens {a.cmd}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        if type(e).__name__ in _LIBRARY_INPUT_ERRORS:
            print(f"prunelens {a.cmd}: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
            return 2
        raise


# Required packages a broken install may lack, and how to get each. torch is not a declared dependency (a bare
# requirement pulls a multi-GB CUDA build): it is the one a plain `pip install prunelens` leaves to the user.
_DEPENDENCIES = {
    "torch": "PyTorch is not installed; install the build for your machine first (CPU: pip install torch "
             "--index-url https://download.pytorch.org/whl/cpu; GPU: see https://pytorch.org/get-started), then rerun",
}
_DECLARED = ("transformers", "safetensors", "numpy", "scipy", "pandas", "matplotlib", "tqdm", "yaml", "gguf",
             "sentencepiece", "datasets", "tokenizers", "huggingface_hub")


def _missing_dependency(e: ModuleNotFoundError) -> str | None:
    """One line for a required package that is not installed; None for anything else (a bug: keep the traceback)."""
    top = (e.name or "").split(".")[0]
    if top in _DEPENDENCIES:
        return _DEPENDENCIES[top]
    if top in _DECLARED:
        pkg = {"yaml": "pyyaml", "huggingface_hub": "huggingface-hub"}.get(top, top)
        return f"the required package {pkg} is not installed (pip install {pkg}; or reinstall prunelens)"
    return None


# Input errors of libraries that do not derive from ValueError/OSError (matched by name: no import needed).
_LIBRARY_INPUT_ERRORS = ("SafetensorError", "HeaderTooLarge", "YAMLError", "ScannerError", "ParserError",
                         "ConstructorError", "UnpicklingError")


if __name__ == "__main__":
    sys.exit(main())
