"""Input lengths against the model's limit, checked before any compute.

A prompt longer than the model's position table crashes deep inside torch on some models (learned positions:
GPT-2's `wpe`) and silently runs past the trained range on others (RoPE); a multi-megabyte row can keep the tokenizer
busy for minutes. `check_lengths` reads the limit from the config, rejects absurdly long texts by their character
count without tokenising them, tokenises the rest in batches as the engine will read them, and raises one TaskError
naming the first sample that does not fit (and how many do not).
"""
from __future__ import annotations

from .base import TaskError

_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
MAX_CHARS_PER_TOKEN = 100      # no real tokenizer averages more characters per token over a whole prompt


def max_positions(model) -> int | None:
    """The model's maximum sequence length from its (text) config, or None when it declares none."""
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    cfgs = [cfg.get_text_config()] if hasattr(cfg, "get_text_config") else []
    for c in cfgs + [cfg]:
        for k in _POSITION_KEYS:
            v = getattr(c, k, None)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


def _texts(s, fmt: str) -> list[str]:
    if fmt == "letter":
        return [s.letter_prompt + s.letters[-1]]
    return [c + t for c, t in zip(s.contexts, s.continuations)]


def check_lengths(lm, samples, fmt: str = "cloze", *, add_bos: bool | None = True, limit: int | None = None,
                  what: str = "task", batch: int = 256) -> int:
    """Raise TaskError if any sample's longest scored sequence (BOS included) exceeds the model's positions.
    Returns the longest length seen (0 when the model declares no limit and nothing was tokenised)."""
    limit = limit or max_positions(lm.model)
    if not limit or not samples:
        return 0
    bos = 1 if add_bos is None or add_bos else 0
    too_long: list[tuple[str, int]] = []
    pending: list[tuple[int, str]] = []            # (sample index, text) still to tokenise
    for i, s in enumerate(samples):
        for t in _texts(s, fmt):
            if len(t) > MAX_CHARS_PER_TOKEN * limit:
                too_long.append((s.id, -len(t)))   # negative: a character count, not tokenised
                break
            pending.append((i, t))
    longest = 0
    tok = lm.tokenizer
    seen_bad = {sid for sid, _ in too_long}
    for start in range(0, len(pending), batch):
        chunk = pending[start:start + batch]
        ids = tok([t for _, t in chunk], add_special_tokens=False).input_ids
        for (i, _), x in zip(chunk, ids):
            n = len(x) + bos
            longest = max(longest, n)
            sid = samples[i].id
            if n > limit and sid not in seen_bad:
                seen_bad.add(sid)
                too_long.append((sid, n))
    if too_long:
        sid, n = too_long[0]
        size = f"{-n} characters" if n < 0 else f"{n} tokens"
        more = f" ({len(too_long)} samples are too long)" if len(too_long) > 1 else ""
        raise TaskError(f"{what}: sample {sid!r} is {size}; the model reads at most {limit} positions{more}. "
                        "Shorten or drop it (or use fewer few-shot examples)")
    return longest
