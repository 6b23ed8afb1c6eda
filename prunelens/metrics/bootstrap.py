"""Percentile bootstrap CIs of a mean over samples (the error bars the referee asked for)."""
from __future__ import annotations

import numpy as np

# Upper bound on elements materialised per chunk of resampled values (float64: 2**24 elements = 128 MiB).
_MAX_CHUNK_ELEMS = 2**24


def _to_numpy(x) -> np.ndarray:
    """torch tensors (possibly requiring grad) and array-likes -> float64 numpy, without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def bootstrap_means(v: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[N, D] -> [n_boot, D]: the column means of n_boot resamples of the rows. One index matrix [n_boot, N] serves
    every column; replicates are built in chunks so memory stays bounded when N*D*n_boot is large."""
    n, d = v.shape
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    means = np.empty((n_boot, d))
    step = max(1, _MAX_CHUNK_ELEMS // max(1, n * d))
    for start in range(0, n_boot, step):
        means[start:start + step] = v[idx[start:start + step]].mean(axis=1)  # [chunk, N, D] -> [chunk, D]
    return means


def bootstrap_mean_ci(values, n_boot: int = 1000, ci: float = 0.95, seed: int = 0):
    """Percentile bootstrap CI of the mean over samples (axis 0).

    values: [N] or [N, D]. One index matrix [n_boot, N] is drawn and reused for every column, so the CIs of all D
    columns (e.g. depths, or DM and accuracy stacked side by side) come from the same resamples.
    Returns (lo, hi): floats for [N] input, arrays [D] for [N, D] input. N = 1 gives lo = hi = the value.
    The resampled values are built in chunks of bootstrap replicates so memory stays bounded when N*D*n_boot is large.
    """
    v = _to_numpy(values)
    if v.ndim not in (1, 2):
        raise ValueError(f"values must be [N] or [N, D], got shape {v.shape}")
    if v.shape[0] == 0:
        raise ValueError("bootstrap of an empty sample")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    scalar = v.ndim == 1
    means = bootstrap_means(v[:, None] if scalar else v, n_boot, seed)

    alpha = (1.0 - ci) / 2.0
    lo, hi = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0)  # each [D]
    if scalar:
        return float(lo[0]), float(hi[0])
    return lo, hi
