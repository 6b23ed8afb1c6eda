"""Command line: `prunelens <command>`. Each command lives in prunelens/commands/<name>.py with a `register`
function, and is a thin wrapper over a documented Python function."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# One module per subcommand; a module that is not there yet is simply not offered.
COMMANDS = ["analyze", "prune", "compare", "export", "eval", "cka", "noise", "ablate", "correlate", "recover", "report",
            "sweep"]


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage is one `--help` away), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="prunelens", description=__doc__)
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
    from .model.anatomy import AnatomyError
    from .tasks.base import TaskError
    try:
        a = build_parser().parse_args(argv)
    except SystemExit as e:              # a bad option (one line already printed) or --help: the code, as an int
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return a.func(a) or 0
    except KeyboardInterrupt:
        if os.environ.get("PRUNELENS_DEBUG"):
            raise
        kept = " (stored steps are kept: rerun the same command to resume)" if a.cmd in ("prune", "sweep") else ""
        print(f"prunelens {a.cmd}: interrupted{kept}", file=sys.stderr)
        return 130
    except (TaskError, AnatomyError, ValueError, OSError) as e:
        # OSError: missing/unreadable files, permissions, a full disk, HF hub errors (missing repo, offline).
        # ValueError includes JSON/YAML syntax errors (json.JSONDecodeError) and every prunelens input error.
        if os.environ.get("PRUNELENS_DEBUG"):
            raise
        # User errors get one clear line, not a traceback from deep inside torch.
        print(f"prunelens {a.cmd}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - only the known input-error classes of libraries below
        if os.environ.get("PRUNELENS_DEBUG") or type(e).__name__ not in _LIBRARY_INPUT_ERRORS:
            raise
        print(f"prunelens {a.cmd}: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 2


# Input errors of libraries that do not derive from ValueError/OSError (matched by name: no import needed).
_LIBRARY_INPUT_ERRORS = ("SafetensorError", "HeaderTooLarge", "YAMLError", "ScannerError", "ParserError",
                         "ConstructorError", "UnpicklingError")


if __name__ == "__main__":
    sys.exit(main())
