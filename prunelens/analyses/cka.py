"""Linear CKA (Kornblith et al. 2019) between a pruned model and its dense model, per depth pair, float64.

Two algebraically equal forms: the Gram form (N x N kernels; cheap when N <= d) and the feature form
(d x d cross-covariances; cheap when N > d). `form="auto"` picks by N vs d, as method.md asks. The debiased
option uses the unbiased HSIC estimator of Song et al. (2012), as in Nguyen et al. (2021) / Kornblith's code.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm


def _center(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X - X.mean(0, keepdims=True)


def _hsic_feature(X: np.ndarray, Y: np.ndarray, debiased: bool) -> float:
    """Un-normalised HSIC from features X [N, p], Y [N, q] without forming N x N matrices."""
    if not debiased:
        Xc, Yc = _center(X), _center(Y)
        return float(np.sum((Xc.T @ Yc) ** 2))
    # Unbiased HSIC on raw Grams with zeroed diagonals K~ = XX^T - diag(|x_i|^2), written in feature space.
    n = X.shape[0]
    nx, ny = np.sum(X * X, 1), np.sum(Y * Y, 1)                      # [N] = diag(K), diag(L)
    tr = np.sum((X.T @ Y) ** 2) - np.sum(nx * ny)                      # tr(K~ L~)
    rk, rl = X @ X.sum(0) - nx, Y @ Y.sum(0) - ny                      # K~ 1, L~ 1
    return float((tr + rk.sum() * rl.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (rk @ rl)) / (n * (n - 3)))


def _grams(A: np.ndarray, debiased: bool) -> np.ndarray:
    """A [D, N, p] -> [D, N, N]: centred Grams (biased) or Grams with a zeroed diagonal (debiased)."""
    A = np.asarray(A, dtype=np.float64)
    if not debiased:
        A = A - A.mean(1, keepdims=True)
    K = A @ A.transpose(0, 2, 1)
    if debiased:
        idx = np.arange(K.shape[1])
        K[:, idx, idx] = 0.0
    return K


def _hsic_gram(K: np.ndarray, L: np.ndarray, debiased: bool) -> np.ndarray:
    """K [Da, N, N], L [Db, N, N] -> [Da, Db] HSIC of every pair (bilinear, so a few matmuls)."""
    n = K.shape[1]
    tr = K.reshape(len(K), -1) @ L.reshape(len(L), -1).T                # <K, L>_F = tr(K L) (symmetric)
    if not debiased:
        return tr
    rk, rl = K.sum(2), L.sum(2)                                         # [Da, N], [Db, N]
    sk, sl = rk.sum(1), rl.sum(1)
    return (tr + np.outer(sk, sl) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (rk @ rl.T)) / (n * (n - 3))


def _check(n: int, debiased: bool) -> None:
    if n < (4 if debiased else 2):
        raise ValueError(f"CKA needs at least {4 if debiased else 2} samples, got {n}")


def linear_cka(X, Y, debiased: bool = False, form: str = "auto") -> float:
    """CKA between X [N, p] and Y [N, q] (rows = the same N samples). form: auto | gram | feature."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y need the same samples, got {X.shape[0]} and {Y.shape[0]} rows")
    _check(X.shape[0], debiased)
    return float(cka_matrix(X[None], Y[None], debiased, form)[0, 0])


def cka_matrix(A, B, debiased: bool = False, form: str = "auto") -> np.ndarray:
    """C[j, l] = CKA(A[j], B[l]) for A [Da, N, p], B [Db, N, q] -> [Da, Db] float64.

    A constant representation (zero HSIC with itself, e.g. the same state for every sample) gives NaN."""
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    n = A.shape[1]
    if B.shape[1] != n:
        raise ValueError(f"A and B need the same samples, got {n} and {B.shape[1]}")
    _check(n, debiased)
    if form == "auto":
        form = "feature" if n > max(A.shape[2], B.shape[2]) else "gram"
    if form == "gram":
        K, L = _grams(A, debiased), _grams(B, debiased)
        num = _hsic_gram(K, L, debiased)
        sa = np.array([_hsic_gram(k[None], k[None], debiased)[0, 0] for k in K])
        sb = np.array([_hsic_gram(l[None], l[None], debiased)[0, 0] for l in L])
    elif form == "feature":
        num = np.array([[_hsic_feature(a, b, debiased) for b in B] for a in A])
        sa = np.array([_hsic_feature(a, a, debiased) for a in A])
        sb = np.array([_hsic_feature(b, b, debiased) for b in B])
    else:
        raise ValueError(f"form must be auto, gram or feature, got {form!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.sqrt(np.clip(np.outer(sa, sb), 0, None))
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def best_match(C: np.ndarray, layers_only: bool = True) -> list[int | None]:
    """For each pruned depth j (row), the dense depth l (column) with the highest CKA; None for an all-NaN row.

    layers_only: a layer output (j >= 1) is matched among the dense layer outputs (l >= 1), as the paper's C[j, l]
    is between layers; depth 0 (the embeddings) is matched to itself. The token-mean embedding carries the prompt's
    token identities and reaches a CKA of ~0.5 against every depth, so admitting it makes the "best match" of a
    degraded layer lexical rather than a depth. layers_only=False keeps every column (reported beside it).
    """
    C = np.asarray(C, dtype=float)
    out = []
    for j, r in enumerate(C):
        if layers_only and j == 0:
            out.append(None if np.isnan(r[0]) else 0)
            continue
        r = r[1:] if layers_only else r
        out.append(None if np.all(np.isnan(r)) else int(np.nanargmax(r)) + (1 if layers_only else 0))
    return out


def match_summary(C: np.ndarray) -> dict:
    """The best-match fields of one signal's matrix [L'+1, L+1] (layers only, and with the embeddings admitted)."""
    bm, bm_all = best_match(C), best_match(C, layers_only=False)
    return {"best_match": bm, "final_best": bm[-1], "best_match_with_embeddings": bm_all,
            "final_best_with_embeddings": bm_all[-1]}


def kept_depths(keep: list[int]) -> list[int]:
    """Dense depth each pruned depth reproduces structurally: 0 -> 0, j -> keep[j-1] + 1 (the kept layer's output)."""
    return [0] + [k + 1 for k in sorted(keep)]


def cka_pruned_vs_dense(lm, samples, fmt: str, keep: list[int], *, debiased: bool = False, form: str = "auto",
                        include_bos: bool = False, batch_size: int = 8, accuracy: dict | None = None,
                        progress: bool = True) -> dict:
    """CKA matrices [L'+1, L+1] between the pruned model (layers `keep`) and the dense one, for both signals.
    accuracy: `controls.evaluate` options (score_kind, margin) to record both models' accuracy too (dense_eval,
    pruned_eval). progress: one bar over the passes (dense, pruned, and the two evaluations)."""
    from ..model.surgery import pruned_view
    from .controls import evaluate
    from .states import prompt_states

    bar = tqdm(total=2 + 2 * (accuracy is not None), desc="cka", disable=not progress)
    dense = prompt_states(lm, samples, fmt, include_bos=include_bos, batch_size=batch_size)
    bar.update()
    with pruned_view(lm, keep):
        pruned = prompt_states(lm, samples, fmt, include_bos=include_bos, batch_size=batch_size)
    bar.update()
    out = {"keep": sorted(keep), "kept_depths": kept_depths(keep), "signals": {}}
    for sig in ("hidden", "decision"):
        C = cka_matrix(pruned[sig], dense[sig], debiased, form)
        out["signals"][sig] = {"matrix": C, "diag": [float(C[j, j]) for j in range(C.shape[0])],
                               **match_summary(C)}
    if accuracy is not None:   # the paper's point is CKA *despite* collapsed accuracy, so record both
        remove = [l for l in range(lm.anatomy.num_layers) if l not in keep]
        for key, rem in (("dense_eval", []), ("pruned_eval", remove)):
            out[key] = evaluate(lm, samples, fmt, rem, **accuracy)
            bar.update()
    bar.close()
    return out
