"""wordlens.embedding.embed_2d: n × 2, deterministic by seed, tiny inputs handled, bad input refused."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from wordlens.embedding import MIN_UMAP_POINTS, embed_2d


def _blobs(n: int, d: int = 24, k: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (k, d))
    return centres[np.arange(n) % k] + rng.normal(size=(n, d))


def test_umap_shape_and_determinism():
    X = _blobs(40)
    a = embed_2d(X, seed=3)
    b = embed_2d(X, seed=3)
    c = embed_2d(X, seed=4)
    assert a.shape == (40, 2) and a.dtype == np.float64 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # the three blobs stay apart: each point's nearest other point is in its own blob
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (d.argmin(1) % 3 == np.arange(40) % 3).mean() > 0.9


def test_umap_caps_n_neighbors_and_metric(caplog):
    X = _blobs(6)
    with caplog.at_level(logging.INFO, logger="wordlens.embedding"):
        Y = embed_2d(X, n_neighbors=15, metric="cosine")
    assert Y.shape == (6, 2) and np.isfinite(Y).all()
    assert "capped at n − 1 = 5" in caplog.text


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_inputs_fall_back_to_pca(n, caplog):
    X = _blobs(n)
    with caplog.at_level(logging.INFO, logger="wordlens.embedding"):
        Y = embed_2d(X)
    assert Y.shape == (n, 2) and np.isfinite(Y).all()
    assert n < MIN_UMAP_POINTS
    assert "placed by PCA" in caplog.text
    if n == 1:
        np.testing.assert_array_equal(Y, np.zeros((1, 2)))
    else:  # PCA keeps the pairwise distances of points on a line / in a plane
        d_in = np.linalg.norm(X[:, None] - X[None], axis=-1)
        d_out = np.linalg.norm(Y[:, None] - Y[None], axis=-1)
        np.testing.assert_allclose(d_out, d_in, atol=1e-8)
    np.testing.assert_array_equal(Y, embed_2d(X, seed=99))


def test_pca_matches_svd_and_fixes_signs():
    X = _blobs(30, d=8)
    Y = embed_2d(X, method="pca")
    u, s, _ = np.linalg.svd(X - X.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(Y), np.abs(u[:, :2] * s[:2]), atol=1e-8)
    assert all(Y[np.argmax(np.abs(Y[:, j])), j] > 0 for j in range(2))
    # more features than points (the Gram-matrix route)
    Xw = _blobs(5, d=50)
    uw, sw, _ = np.linalg.svd(Xw - Xw.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(embed_2d(Xw, method="pca")), np.abs(uw[:, :2] * sw[:2]), atol=1e-8)


def test_identical_points_and_rank_one():
    assert np.array_equal(embed_2d(np.ones((8, 5))), np.zeros((8, 2)))
    line = np.outer(np.arange(3.0), np.ones(4))
    Y = embed_2d(line)  # rank 1: the second coordinate is 0
    assert Y.shape == (3, 2) and np.allclose(Y[:, 1], 0)


def test_tsne():
    Y = embed_2d(_blobs(20), method="tsne", seed=1)
    assert Y.shape == (20, 2) and np.isfinite(Y).all()
    np.testing.assert_array_equal(Y, embed_2d(_blobs(20), method="tsne", seed=1))


@pytest.mark.parametrize(
    "X, kw, match",
    [
        (np.zeros((0, 4)), {}, "X is empty"),
        (np.zeros(5), {}, "X must be a 2-D array"),
        (np.zeros((4, 0)), {}, "no features"),
        (np.array([[1.0, np.nan]] * 5), {}, "non-finite"),
        (np.array([["a", "b"]] * 5), {}, "real-valued"),
        (np.zeros((5, 3)), {"method": "mds"}, "method must be one of"),
        (np.zeros((5, 3)), {"n_neighbors": 1}, "n_neighbors must be at least 2"),
    ],
)
def test_bad_input(X, kw, match):
    with pytest.raises(ValueError, match=match):
        embed_2d(X, **kw)
