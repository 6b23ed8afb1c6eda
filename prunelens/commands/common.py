"""Options shared by several subcommands."""
from __future__ import annotations

import argparse
import json


def _common_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="gemma-3-270m",
                   help="hub id, local checkpoint folder, .gguf file, or the built-in alias gemma-3-270m")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", help="auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16, float16")
    p.add_argument("--trust-remote-code", action="store_true", help="run model code from the checkpoint (off)")
    p.add_argument("--device-map", default=None,
                   help="accelerate device_map for big models: auto, balanced, sequential, or a JSON object "
                        "{module: device} (multi-GPU / CPU / disk offload)")
    p.add_argument("--offload-folder", default=None, help="where layers mapped to \"disk\" are offloaded")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--add-bos", default="auto", choices=["auto", "yes", "no"],
                   help="start contexts with BOS: auto = as the tokenizer does (always for Gemma, as lm-eval)")


def device_map_arg(a):
    """--device-map as load_model takes it: None, a strategy name, or the parsed JSON mapping."""
    dm = getattr(a, "device_map", None)
    if dm and dm.strip().startswith("{"):
        try:
            return json.loads(dm)
        except json.JSONDecodeError as e:
            raise SystemExit(f"--device-map is not valid JSON: {e}") from None
    return dm


def load_lm(a):
    """The model as every analysis command's model options describe it."""
    from ..model import load_model
    return load_model(a.model, device=a.device, dtype=a.dtype, trust_remote_code=a.trust_remote_code,
                      device_map=device_map_arg(a), offload_folder=a.offload_folder)


def ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()] if s else []


def floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


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
    p.add_argument("--limit", type=int, default=None, help="first N samples")
    p.add_argument("--sample", type=int, default=None, help="seeded random subset of N samples")
    p.add_argument("--seed", type=int, default=0)
