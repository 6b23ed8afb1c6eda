"""CKA against an independent textbook computation, its invariances, and the pruned-vs-dense wrapper."""
import numpy as np
import pytest

from helpers import tiny_lm, tiny_samples
from prunelens.analyses.cka import best_match, cka_matrix, cka_pruned_vs_dense, kept_depths, linear_cka


def textbook_cka(X, Y):
    """Kornblith et al. eq. (3): HSIC = tr(K H L H) / (n-1)^2 with K = X X^T, H = I - 11^T / n."""
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    hsic = lambda K, L: np.trace(K @ H @ L @ H) / (n - 1) ** 2
    K, L = X @ X.T, Y @ Y.T
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def textbook_unbiased_hsic(K, L):
    """Song et al. (2012) unbiased HSIC, written with explicit loops over index triples' sums."""
    n = len(K)
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    one = np.ones(n)
    return (np.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ Kt @ Lt @ one) / (n * (n - 3))


def textbook_debiased_cka(X, Y):
    K, L = X @ X.T, Y @ Y.T
    return textbook_unbiased_hsic(K, L) / np.sqrt(textbook_unbiased_hsic(K, K) * textbook_unbiased_hsic(L, L))


rng = np.random.default_rng(0)


@pytest.mark.parametrize("n,p,q", [(20, 7, 5), (6, 30, 12)])      # N > d (feature form) and N < d (Gram form)
@pytest.mark.parametrize("form", ["auto", "gram", "feature"])
def test_matches_textbook(n, p, q, form):
    X = rng.normal(size=(n, p))
    Y = X[:, :min(p, q)] @ rng.normal(size=(min(p, q), q)) + 0.5 * rng.normal(size=(n, q))
    assert linear_cka(X, Y, form=form) == pytest.approx(textbook_cka(X, Y), abs=1e-12)
    assert linear_cka(X, Y, debiased=True, form=form) == pytest.approx(textbook_debiased_cka(X, Y), abs=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_invariances(debiased):
    X, Y = rng.normal(size=(30, 8)), rng.normal(size=(30, 6))
    base = linear_cka(X, Y, debiased)
    Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(7.3 * X, Y, debiased) == pytest.approx(base, abs=1e-12)          # isotropic scaling
    assert linear_cka(X @ Q, Y, debiased) == pytest.approx(base, abs=1e-12)            # orthogonal rotation
    assert linear_cka(X, X, debiased) == pytest.approx(1.0, abs=1e-12)                 # self-similarity
    assert linear_cka(X, Y, debiased) == pytest.approx(linear_cka(Y, X, debiased), abs=1e-12)
    if not debiased:
        assert linear_cka(X + 5.0, Y) == pytest.approx(base, abs=1e-12)                # mean shift (centring)
    # an anisotropic scaling is NOT an invariance: the test can tell the difference
    assert abs(linear_cka(X * np.linspace(0.1, 10, 8), Y, debiased) - base) > 1e-4


def test_matrix_and_best_match():
    A, B = rng.normal(size=(3, 15, 4)), rng.normal(size=(5, 15, 6))
    C = cka_matrix(A, B)
    assert C.shape == (3, 5)
    assert C[1, 2] == pytest.approx(textbook_cka(A[1], B[2]), abs=1e-12)
    const = np.ones((1, 15, 4))
    assert np.isnan(cka_matrix(const, B)).all()        # zero-variance state: undefined, not 0 or 1
    assert best_match(np.array([[0.1, 0.9, 0.3], [np.nan] * 3]), layers_only=False) == [1, None]
    # layers only: row 0 (embeddings) is matched to itself, later rows never to column 0
    E = np.array([[1.0, 0.2, 0.1], [0.9, 0.3, 0.5], [0.8, 0.6, 0.4]])
    assert best_match(E) == [0, 2, 1] and best_match(E, layers_only=False) == [0, 0, 0]
    assert best_match(np.array([[np.nan, 0.2], [0.5, np.nan]])) == [None, None]
    assert kept_depths([0, 2, 3]) == [0, 1, 3, 4]


def test_pruned_vs_dense_tiny():
    lm, S = tiny_lm("llama"), tiny_samples(10)
    dense = cka_pruned_vs_dense(lm, S, "cloze", [0, 1, 2, 3])         # keeping every layer: C = self-similarity
    H = np.asarray(dense["signals"]["hidden"]["matrix"])
    assert H.shape == (5, 5)
    assert np.allclose(np.diag(H), 1.0, atol=1e-9)
    assert dense["signals"]["hidden"]["best_match"] == [0, 1, 2, 3, 4]
    r = cka_pruned_vs_dense(lm, S, "cloze", [0, 2, 3])
    Hp = np.asarray(r["signals"]["hidden"]["matrix"])
    assert Hp.shape == (4, 5)
    assert Hp[0, 0] == pytest.approx(1.0) and Hp[1, 1] == pytest.approx(1.0)   # before the first removed layer
    assert lm.anatomy.num_layers == 4                                            # the view was undone
