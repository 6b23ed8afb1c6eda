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


def above_chance(acc_ci_low: float, levels: dict) -> bool:
    """True when the accuracy CI's lower bound lies above both chance levels."""
    return acc_ci_low > levels["floor"]


def describe(levels: dict) -> str:
    return (f"chance {levels['uniform']:.3f} (uniform), {levels['constant']:.3f} (always option "
            f"{levels['constant_option']})")
