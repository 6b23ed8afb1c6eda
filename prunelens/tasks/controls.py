"""Letter-format controls (issue 12): the same questions with other option letters, or with the options permuted.

Letter choice is known to be bound late in the network (arXiv 2407.15018, 2601.03914): a transition measured on
" A"/" B"/... may be where the model maps an answer it already holds onto a letter, not where it decides. Rerunning
the letter format with unusual letters (e.g. Q/Z/R/X) or permuted options separates the two: a decision that moves
with the letters is the letter binding.
"""
from __future__ import annotations

import random
from dataclasses import replace

from .base import LETTERS, MCSample, TaskError


def check_letters(letters: str, need: int) -> str:
    letters = str(letters).strip().upper()
    if not letters.isalpha() or not letters.isascii() or len(set(letters)) != len(letters):
        raise TaskError(f"--letters {letters!r}: give distinct letters A-Z, e.g. QZRX")
    if len(letters) < need:
        raise TaskError(f"--letters {letters!r}: {len(letters)} letters for questions with up to {need} options")
    return letters


def _option_lines(s: MCSample) -> tuple[list[str], int]:
    """The prompt's lines and the index of its first option line (the K lines before the final 'Answer:')."""
    lines = s.letter_prompt.split("\n")
    K = s.n_options
    first = len(lines) - 1 - K
    cur = s.meta.get("letters", LETTERS)
    if first < 0 or lines[-1] != "Answer:" or any(not lines[first + k].startswith(f"{cur[k]}. ") for k in range(K)):
        raise TaskError(f"sample {s.id!r}: its letter prompt does not end with one 'X. option' line per option and "
                        f"'Answer:'; letter controls need that layout")
    return lines, first


def relabel(samples: list[MCSample], letters: str) -> list[MCSample]:
    """Option k's letter becomes letters[k] in the prompt and as the decision token."""
    letters = check_letters(letters, max(s.n_options for s in samples))
    out = []
    for s in samples:
        lines, first = _option_lines(s)
        cur = s.meta.get("letters", LETTERS)
        for k in range(s.n_options):
            lines[first + k] = letters[k] + lines[first + k][len(cur[k]):]
        out.append(replace(s, letter_prompt="\n".join(lines), meta={**s.meta, "letters": letters[:s.n_options]}))
    return out


def permute_options(samples: list[MCSample], seed: int) -> list[MCSample]:
    """Each question's options in a seeded random order (its own stream per question id), gold moved with them; in
    both formats (cloze scores do not depend on the order: a check that nothing else does)."""
    out = []
    for s in samples:
        lines, first = _option_lines(s)
        cur = s.meta.get("letters", LETTERS)
        perm = list(range(s.n_options))
        random.Random(f"{seed}:{s.id}").shuffle(perm)
        texts = [lines[first + k][len(cur[k]) + 2:] for k in range(s.n_options)]
        for k, p in enumerate(perm):
            lines[first + k] = f"{cur[k]}. {texts[p]}"
        pick = lambda xs: tuple(xs[p] for p in perm)                   # noqa: E731
        out.append(replace(s, contexts=pick(s.contexts), continuations=pick(s.continuations), choices=pick(s.choices),
                           gold=perm.index(s.gold), letter_prompt="\n".join(lines)))
    return out
