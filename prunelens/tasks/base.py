"""The task layer's one data type: a multiple-choice sample in both decision formats.

Every benchmark loader turns its rows into `MCSample`s; the engine never sees benchmark-specific fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class TaskError(ValueError):
    """Bad task input (malformed file, missing field, bad gold index...). The message names file and line/sample."""


@dataclass(frozen=True)
class MCSample:
    """One multiple-choice question.

    cloze format (lm-eval-harness continuation scoring): option k is scored as
        log P(continuations[k] | contexts[k])
    `contexts` has one entry per option; it is the same string for every option except in tasks with
    "partial scoring" (WinoGrande), where the context varies and the continuation is shared.
    `continuations[k]` already includes lm-eval's target delimiter (usually a leading " ").
    `choices[k]` is the option text used for lm-eval's acc_norm length (len(choices[k]) characters).

    letter format (the paper's): `letter_prompt` lists the options with letters and ends with "Answer:";
    option k's decision token is " " + LETTERS[k].
    """

    id: str
    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    choices: tuple[str, ...]
    gold: int
    letter_prompt: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def n_options(self) -> int:
        return len(self.continuations)

    @property
    def letters(self) -> tuple[str, ...]:
        """Decision tokens " A", " B", ... (other letters after tasks.controls.relabel)."""
        use = self.meta.get("letters", LETTERS)
        return tuple(" " + use[k] for k in range(self.n_options))


def validate_sample(s: MCSample, where: str) -> None:
    """Raise TaskError naming `where` (file:line or sample id) if `s` cannot be scored."""
    k = len(s.continuations)
    if k < 2:
        raise TaskError(f"{where}: sample {s.id!r} has {k} option(s); at least 2 are needed")
    if not (len(s.contexts) == len(s.choices) == k):
        raise TaskError(f"{where}: sample {s.id!r} has {len(s.contexts)} contexts, {len(s.choices)} choices and "
                        f"{k} continuations; they must match")
    if k > len(LETTERS):
        raise TaskError(f"{where}: sample {s.id!r} has {k} options; at most {len(LETTERS)} are supported")
    for i, (c, t) in enumerate(zip(s.choices, s.continuations)):
        if not str(c).strip() or not str(t).strip():
            raise TaskError(f"{where}: sample {s.id!r} option {i} has empty text")
    if not isinstance(s.gold, int) or isinstance(s.gold, bool) or not 0 <= s.gold < k:
        raise TaskError(f"{where}: sample {s.id!r} has gold index {s.gold!r}, outside 0..{k - 1}")


def letter_prompt(question: str, options, passage: str | None = None) -> str:
    """The paper's letter format: "[passage\\n]Question: {question}\\nA. {opt}\\nB. {opt}\\n...\\nAnswer:".

    Options are stripped (some lm-eval choices keep a leading space, which would read as "A.  text").
    """
    options = list(options)
    if len(options) > len(LETTERS):
        raise TaskError(f"{len(options)} options: at most {len(LETTERS)} options in letter format")
    lines = [] if passage is None else [passage]
    lines.append(f"Question: {question}")
    lines += [f"{LETTERS[k]}. {str(opt).strip()}" for k, opt in enumerate(options)]
    lines.append("Answer:")
    return "\n".join(lines)


def _encode(tokenizer, text: str) -> list[int]:
    # No BOS/EOS: we compare a prompt with prompt+letter, and special tokens would only add noise.
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:  # tokenizers without that keyword (e.g. a bare `tokenizers.Tokenizer` or a test stub)
        ids = tokenizer.encode(text)
    return list(getattr(ids, "ids", ids))


def check_letter_tokens(tokenizer, samples) -> None:
    """Raise TaskError unless, for every sample and every letter it uses, the letter is exactly one new token.

    The letter decision reads one logit per option, so `encode(prompt + " A")` must be `encode(prompt)` plus
    exactly one token. Tokenizers that merge the space into the prompt's last token, or split " A" in two,
    would silently score the wrong position; this catches that before any compute.
    """
    for s in samples:
        base = _encode(tokenizer, s.letter_prompt)
        for letter in s.letters:
            full = _encode(tokenizer, s.letter_prompt + letter)
            if len(full) != len(base) + 1 or full[: len(base)] != base:
                raise TaskError(f"sample {s.id!r}: letter {letter!r} after its letter prompt encodes to "
                                f"{len(full) - len(base)} extra token(s) (prefix kept: {full[:len(base)] == base}); "
                                "the letter format needs exactly one token per letter")


def samples_from_rows(rows, to_sample, ids=None) -> list[MCSample]:
    """Turn [(where, row)] into validated samples; any row problem becomes one TaskError naming `where`.

    `to_sample(row, fallback_id)` may raise KeyError (missing field) or ValueError/TypeError/IndexError (bad value);
    those are re-raised as TaskError so callers never see a bare traceback from a data file.
    """
    samples, seen = [], {}
    for i, (where, row) in enumerate(rows):
        sid = str(i) if ids is None else ids[i]
        try:
            s = to_sample(row, sid)
        except TaskError as e:
            raise TaskError(f"{where}: {e}") from None
        except KeyError as e:
            raise TaskError(f"{where}: missing field {e.args[0]!r}") from None
        except (ValueError, TypeError, IndexError, AttributeError) as e:
            raise TaskError(f"{where}: {e}") from None
        validate_sample(s, where)
        if s.id in seen:  # results are keyed by id downstream; a repeat would silently overwrite one
            raise TaskError(f"{where}: sample id {s.id!r} repeats the one at {seen[s.id]}")
        seen[s.id] = where
        samples.append(s)
    return samples
