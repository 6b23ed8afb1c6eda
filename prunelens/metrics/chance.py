"""Chance levels of a question set: the accuracies that carry no decision.

Two baselines; the stricter one decides whether a model is "above chance":
- uniform: the expected accuracy of a random answer, the mean of 1/options. This is method.md's chance, the one
  "halfway to chance" (the critical ratio) is measured against.
- constant: the accuracy of giving the same option position to every question, at the best position. When the gold
  answers are unbalanced (BoolQ's validation split is about 62% "yes") a model that says "yes" to everything beats the
  uniform chance without deciding anything. Gemma-3-270M does exactly that on BoolQ (results/study2): its 0.61 is the
  share of "yes", and its lens has no decision to find.
"""
from __future__ import annotations

import math

import numpy as np


def wilson(k: int, n: int, z: float = 1.959963984540054) -> list[float] | None:
    """The Wilson score interval of k successes in n (None when n = 0)."""
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [c - h, c + h]


def chance_levels(gold, n_options) -> dict:
    """gold, n_options: [N] per question. {"uniform", "constant", "constant_option", "floor"}: floor is the larger of
    the two, the level a model must beat to be deciding anything."""
    gold, k = np.asarray(gold, int), np.asarray(n_options, int)
    if gold.size == 0:
        raise ValueError("chance_levels: no questions")
    if (gold < 0).any() or (gold >= k).any():
        raise ValueError("chance_levels: a gold index lies outside its question's options")
    uniform = float(np.mean(1.0 / k))
    share = np.bincount(gold, minlength=int(k.max())) / gold.size
    j = int(np.argmax(share))
    return {"uniform": uniform, "constant": float(share[j]), "constant_option": j,
            "floor": max(uniform, float(share[j]))}


def levels(uniform: float, constant: float | None = None, constant_option: int | None = None) -> dict:
    """The levels from stored numbers (a plan, a trajectory); constant None: not known."""
    return {"uniform": float(uniform), "constant": constant, "constant_option": constant_option,
            "floor": max(float(uniform), constant if constant is not None else 0.0)}


def judge(acc: float, n: int, lv: dict) -> tuple[bool | None, str]:
    """(above chance?, why): the Wilson 95% interval of accuracy `acc` on n questions against both levels. This one
    rule decides everywhere (analyze, the study gates, Figure 8, plan-eval, the report), so a run and a trajectory
    on the same questions can never be judged differently. None: above the uniform level but the constant level is
    not known."""
    if not n:
        return None, "no questions"
    lo, hi = wilson(round(acc * n), n)
    txt = f"accuracy {acc:.3f} [{lo:.3f}, {hi:.3f}] (n = {n}), {describe(lv)}"
    if lo <= lv["floor"]:                      # the larger known level (the uniform one while constant is unknown)
        return False, txt
    return (True, txt) if lv["constant"] is not None else (None, txt + "; the constant level is not known")


def option_name(i) -> str:
    """Option position as users read it: '#2 (B)' for index 1 (the position, whatever letters a prompt shows)."""
    return f"#{i + 1} ({chr(65 + i)})" if isinstance(i, int) and 0 <= i < 26 else str(i)


def describe(lv: dict) -> str:
    const = ("always one option: not known" if lv.get("constant") is None else
             f"{lv['constant']:.3f} (always option {option_name(lv['constant_option'])})")
    return f"chance {lv['uniform']:.3f} (uniform), {const}"
