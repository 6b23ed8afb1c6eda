"""Linear probes of the gold option, per depth, cross-validated (out-of-fold scores for every question).

Letter format: multinomial logistic regression on the decision state, one weight vector per option letter.
Cloze: one shared weight vector scores each option's own state (option states of states.py); the softmax runs over
the question's options. Features are standardised on the training fold; L2 penalty `lam` on the weights; fitted
with L-BFGS in float64. The shuffled-label control fits the same probe to random gold indices: what a probe of this
size finds with no signal (it should sit at chance).
"""
from __future__ import annotations

import numpy as np
import torch


def _logits(F, W, b, shared: bool):
    return F @ W if shared else F @ W + b                               # [n, K]


def fit_probe(F: np.ndarray, y: np.ndarray, valid: np.ndarray, lam: float = 1e-2, iters: int = 100):
    """F [n, d] (letter) or [n, K, d] (cloze), y [n] gold, valid [n, K] bool. Returns predict(F') -> [n', K]."""
    shared = F.ndim == 3
    X = torch.as_tensor(F, dtype=torch.float64)
    rows = X[torch.as_tensor(valid)] if shared else X
    mu, sd = rows.mean(0), rows.std(0).clamp_min(1e-8)
    X = torch.nan_to_num((X - mu) / sd)
    K = valid.shape[1]
    W = torch.zeros(X.shape[-1] if shared else (X.shape[-1], K), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    mask = torch.as_tensor(~valid)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.LBFGS([W, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = _logits(X, W, b, shared).masked_fill(mask, -torch.inf)
        loss = torch.nn.functional.cross_entropy(z, yt) + lam * (W ** 2).sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    W, b = W.detach(), b.detach()

    def predict(F2: np.ndarray) -> np.ndarray:
        X2 = torch.nan_to_num((torch.as_tensor(F2, dtype=torch.float64) - mu) / sd)
        return _logits(X2, W, b, shared).numpy()
    return predict


def probe_scores(X: np.ndarray, gold, n_options, *, folds: int = 5, seed: int = 0, lam: float = 1e-2,
                 shuffle_labels: bool = False) -> np.ndarray:
    """Out-of-fold probe scores [N, D, K] (NaN for missing options). X: [N, D, d] (letter) or [N, K, D, d]."""
    gold, n_options = np.asarray(gold), np.asarray(n_options)
    N = len(gold)
    K = int(n_options.max())
    if folds < 2 or folds > N:
        raise ValueError(f"folds must lie in 2..{N} (the questions), got {folds}")
    rng = np.random.default_rng(seed)
    y = gold.copy()
    if shuffle_labels:   # gold permuted among questions with as many options: the label distribution is kept
        srng = np.random.default_rng([seed, 0x5EED])        # its own stream: never the one that made the data
        for k in np.unique(n_options):
            at = np.flatnonzero(n_options == k)
            y[at] = gold[srng.permutation(at)]
    valid = np.arange(K)[None] < n_options[:, None]
    fold = rng.permutation(N) % folds
    D = X.shape[1] if X.ndim == 3 else X.shape[2]
    out = np.full((N, D, K), np.nan)
    for d in range(D):
        F = X[:, d] if X.ndim == 3 else X[:, :, d]
        for f in range(folds):
            tr, te = fold != f, fold == f
            pred = fit_probe(F[tr], y[tr], valid[tr], lam)(F[te])
            out[te, d] = np.where(valid[te], pred, np.nan)
    return out
