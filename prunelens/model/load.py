"""Resolve a model spec (built-in alias, .gguf file, local folder, hub id) and load it ready for the lens."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .anatomy import Anatomy, find_anatomy, verify_anatomy
from .builtin import ALIASES, builtin_checkpoint
from .gguf import convert_gguf

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    anatomy: Anatomy
    name: str           # what the user asked for
    path: str           # resolved local folder (or hub id)

    @property
    def device(self) -> torch.device:
        return self.anatomy.unembed.weight.device


class ModelLoadError(ValueError):
    """A model that cannot be loaded as asked (missing or corrupt weights, unreachable hub id, bad device)."""


_DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE_RE = re.compile(r"^(cpu|disk|meta|mps|(cuda|xpu|npu|hpu)(:\d+)?)$")


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not _DEVICE_RE.match(device) or device in ("disk", "meta"):
        raise ValueError(f"--device {device!r}: not a device; use auto, cpu, cuda, cuda:N (or mps)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(device)


def check_device_map(dm):
    """A device_map as accelerate takes it: None, a strategy name, or {module: device} whose devices are GPU indices
    (ints), "cpu", "disk", "cuda[:N]" or "mps". Returns it; raises ValueError naming the bad entry."""
    if dm is None or (isinstance(dm, str) and dm in _DEVICE_MAP_STRATEGIES):
        return dm
    if isinstance(dm, str):
        raise ValueError(f"--device-map {dm!r}: use {', '.join(_DEVICE_MAP_STRATEGIES)} or a JSON object "
                         "{module: device}")
    if not isinstance(dm, dict) or not dm:
        raise ValueError(f"--device-map: expected a non-empty JSON object {{module: device}}, got {dm!r}")
    for k, v in dm.items():
        ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 0) or (
            isinstance(v, str) and _DEVICE_RE.match(v) and v != "meta")
        if not isinstance(k, str) or not ok:
            raise ValueError(f"--device-map: {k!r}: {v!r} is not a device (a GPU index, \"cpu\", \"disk\", "
                             "\"cuda:N\" or \"mps\")")
    return dm


def _offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _check_hub_id(spec: str) -> None:
    """Fail in a second, not after ~70 s of retries, when a hub id cannot be fetched: not cached and offline
    (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, or the hub endpoint unreachable)."""
    try:
        from huggingface_hub import try_to_load_from_cache
        if isinstance(try_to_load_from_cache(spec, "config.json"), str):
            return                                  # cached: transformers loads it without the network
    except Exception:  # noqa: BLE001 - an invalid repo id is reported by the checks below / transformers
        pass
    if not re.match(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$", spec):
        raise FileNotFoundError(f"--model {spec}: not a local folder, .gguf file or built-in alias, and not a "
                                "valid hub id")
    if _offline():
        raise ModelLoadError(f"--model {spec}: a hub id that is not in the local cache, and the hub is off "
                             "(HF_HUB_OFFLINE); give a local checkpoint folder or download it first")
    import socket
    from urllib.parse import urlparse
    u = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout=5).close()
    except OSError as e:
        raise ModelLoadError(f"--model {spec}: a hub id that is not in the local cache, and {u.hostname} cannot be "
                             f"reached ({e.strerror or e}); give a local checkpoint folder or set up the network") \
            from None


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r}: choose one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_model_path(spec: str, log=print) -> str:
    """A local folder path for aliases, .gguf files and folders; hub ids are returned unchanged."""
    if spec in ALIASES:
        return str(builtin_checkpoint(spec, log=log))
    p = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        return str(convert_gguf(p, log=log))
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"--model {spec}: folder has no config.json; not a Hugging Face checkpoint")
        return str(p.resolve())
    if p.exists() or spec.startswith((".", "/", "~")):
        raise FileNotFoundError(f"--model {spec}: not a checkpoint folder or .gguf file")
    _check_hub_id(spec)
    return spec  # a hub id; transformers fetches it when online


def load_model(spec: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False,
               device_map: str | dict | None = None, verify: bool = True, log=print,
               offload_folder: str | None = None) -> LoadedModel:
    """device_map (accelerate: "auto", "balanced", {module: device}) spreads the model over GPUs / CPU, or offloads
    layers to `offload_folder` ("disk"); the final norm and unembedding must stay on a real device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    check_device_map(device_map)
    if device_map is not None:
        import importlib.util
        if importlib.util.find_spec("accelerate") is None:
            raise ValueError("--device-map needs the package accelerate: pip install 'prunelens[bigmodel]' "
                             "(or pip install accelerate)")
    path = resolve_model_path(spec, log=log)
    kw = dict(dtype=dt, trust_remote_code=trust_remote_code)
    if device_map is not None:
        kw["device_map"] = device_map
        if offload_folder is not None:
            kw["offload_folder"] = str(offload_folder)
    model = _from_pretrained(AutoModelForCausalLM, path, spec, kw)
    if device_map is None:
        model.to(dev)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    anatomy = find_anatomy(model)
    if verify:
        ids = tok("The capital of France is Paris. Answer:", return_tensors="pt").input_ids
        verify_anatomy(model, anatomy, ids)
    return LoadedModel(model=model, tokenizer=tok, anatomy=anatomy, name=spec, path=path)


def _from_pretrained(auto, path: str, spec: str, kw: dict):
    """from_pretrained with its failure modes as one ModelLoadError each: unreadable or corrupt weight files, and
    weights missing from the checkpoint (transformers would initialise those layers at random and run anyway)."""
    try:
        model, info = auto.from_pretrained(path, output_loading_info=True, **kw)
    except (OSError, ValueError, RuntimeError, EnvironmentError) as e:
        if isinstance(e, ModelLoadError):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"--model {spec}: cannot load the checkpoint ({type(e).__name__}: {msg})") from e
    except Exception as e:  # noqa: BLE001 - safetensors' SafetensorError derives from Exception only
        if type(e).__name__ not in ("SafetensorError", "HeaderTooLarge", "UnpicklingError"):
            raise
        raise ModelLoadError(f"--model {spec}: corrupt weight file ({type(e).__name__}: {e})") from e
    missing = [k for k in info.get("missing_keys", []) or [] if not _tied_away(model, k)]
    if missing:
        shown = ", ".join(sorted(missing)[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ModelLoadError(f"--model {spec}: the checkpoint lacks {len(missing)} weight(s) its config needs "
                             f"({shown}); those layers would run with random weights")
    mism = info.get("mismatched_keys") or []
    if mism:
        raise ModelLoadError(f"--model {spec}: {len(mism)} weight(s) have another shape than the config says "
                             f"({', '.join(str(m[0] if isinstance(m, (tuple, list)) else m) for m in mism[:4])})")
    return model


def _tied_away(model, key: str) -> bool:
    """A missing key that is tied to a loaded one (e.g. lm_head.weight = embed_tokens.weight) is not missing."""
    if not getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        return False
    out = model.get_output_embeddings()
    inp = model.get_input_embeddings()
    return out is not None and inp is not None and out.weight is inp.weight and key.endswith(
        ("lm_head.weight", "embed_out.weight", "output.weight"))
