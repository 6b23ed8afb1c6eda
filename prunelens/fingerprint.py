"""Cheap identities of what a stored result was computed from, so a resumed or shared cache is only reused for the
same model weights and the same data (a changed checkpoint or task file under the same name is a different key).

- `model_identity(lm)`: sha256 over the checkpoint folder's config and weight files (name, size and the first and
  last MiB of each) and over the loaded parameters (name, shape, dtype and their first and last values). Reading
  2 MiB per weight file and a few values per tensor takes milliseconds, also for multi-GB models. prunelens's own
  conversion record (`prunelens-converted.json`: source path and wall time) is left out: it changes with every
  reconversion of the same GGUF file, which would otherwise make every resumable run refuse (or recompute) its
  finished work after a cache is rebuilt. Small JSON files (configs) are hashed as their parsed content without the
  writer's version stamp (`transformers_version`): `save_pretrained` writes the installed transformers version into
  config.json and generation_config.json, so upgrading transformers and reconverting the same GGUF file gave the same
  weights a new identity (found 2026-12-08: 5.24.0 -> 5.25.0 changed nothing else, byte for byte) and a resumable run
  refused its own trajectory. An identity made by the byte rule before that (`legacy_model_identity`) is still
  recognised where a stored run is checked (trajectory resume, sweep, journals) while the files are those it was made
  from; after a transformers upgrade they are not, and `results/rekey_model_identity.py` moves a run over once it
  has proved the weights are the same.
- `samples_digest(samples)`: sha256 over every field the engine reads (ids, contexts, continuations, choices, gold,
  letter prompt).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .model.gguf import MARKER      # the conversion record: not part of the weights

_EDGE = 1 << 20                      # bytes read at each end of a weight file
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".model", ".json")


_VERSION_STAMPS = ("transformers_version",)   # written by whichever library saved the file, not part of the model
_SMALL_JSON = 1 << 20                          # configs are small; tokenizer.json (tens of MB) keeps the byte rule


def _json_part(h, f: Path) -> bool:
    """Hash a small JSON object file as its content without version stamps; False if it is not one."""
    if f.stat().st_size > _SMALL_JSON:
        return False
    try:
        obj = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(obj, dict):
            return False
        text = json.dumps({k: v for k, v in obj.items() if k not in _VERSION_STAMPS}, sort_keys=True)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    h.update(f"{f.name}:json:".encode() + text.encode())
    return True


def _file_part(h, f: Path) -> None:
    if not (f.suffix == ".json" and _json_part(h, f)):
        _bytes_part(h, f)


def _bytes_part(h, f: Path) -> None:
    size = f.stat().st_size
    h.update(f"{f.name}:{size}:".encode())
    with open(f, "rb") as fh:
        h.update(fh.read(_EDGE))
        if size > 2 * _EDGE:
            fh.seek(size - _EDGE)
            h.update(fh.read(_EDGE))
        elif size > _EDGE:
            h.update(fh.read())


def _params_part(h, model) -> None:
    import torch
    for name, p in model.state_dict().items():
        h.update(f"{name}:{tuple(p.shape)}:{p.dtype}:".encode())
        if p.device.type == "meta" or p.numel() == 0:
            continue
        flat = p.detach().reshape(-1)
        k = min(16, flat.numel())
        edge = torch.cat([flat[:k], flat[-k:]]).to("cpu", torch.float64)
        h.update(edge.numpy().tobytes())


def model_files(path: Path) -> list[Path]:
    """The files of a checkpoint folder that its identity covers."""
    return [f for f in sorted(path.iterdir()) if f.is_file() and f.suffix in _WEIGHT_SUFFIXES and f.name != MARKER]


def model_identity(lm) -> str:
    return _identity(lm, _file_part)


def legacy_model_identity(lm) -> str:
    """The identity by the rule before 2026-12-08 (every file hashed as bytes, version stamps included)."""
    return _identity(lm, _bytes_part)


def _identity(lm, file_part) -> str:
    h = hashlib.sha256()
    path = Path(str(lm.path))
    if path.is_dir():
        for f in model_files(path):
            file_part(h, f)
    else:
        h.update(f"hub:{lm.path}:{getattr(lm.model.config, '_commit_hash', None)}".encode())
    _params_part(h, lm.model)
    return h.hexdigest()[:20]


def samples_digest(samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.id, list(s.contexts), list(s.continuations), list(s.choices), s.gold,
                             s.letter_prompt], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()[:20]


def tokens_digest(seqs) -> str:
    """Digest of token-id sequences (e.g. calibration prompts or batches)."""
    h = hashlib.sha256()
    for s in seqs:
        h.update(",".join(map(str, s)).encode())
        h.update(b"\n")
    return h.hexdigest()[:20]
