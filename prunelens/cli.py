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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="prunelens", description=__doc__)
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


def main(argv=None) -> int:
    from .model.anatomy import AnatomyError
    from .tasks.base import TaskError
    a = build_parser().parse_args(argv)
    try:
        return a.func(a) or 0
    except (TaskError, AnatomyError, FileNotFoundError, ValueError) as e:
        if os.environ.get("PRUNELENS_DEBUG"):
            raise
        # User errors get one clear line, not a traceback from deep inside torch.
        print(f"prunelens {a.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
