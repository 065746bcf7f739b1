"""Two-dimensional maps of images' and categories' representative vectors (Dai, §3.1, Fig. 9).

:func:`embed_2d` folds an n × d matrix (one row per image, or per category: its
representative vector, the mean of its images' vectors) into n × 2 points with UMAP
(McInnes et al., ``umap-learn``), as Dai does; t-SNE (scikit-learn) and PCA are there to
compare with.

UMAP needs a k-nearest-neighbour graph and a spectral initialisation, neither of which
exists for a handful of points: ``n_neighbors`` is capped at n − 1 and fewer than
:data:`MIN_UMAP_POINTS` points are placed by PCA instead (logged), so a layer with three
categories still gets a map.  With a fixed ``seed`` UMAP runs single-threaded and is
deterministic on one machine (numba's floating point may differ across CPUs); PCA is
deterministic everywhere (component signs fixed).

Up to :data:`EXACT_KNN_MAX` points UMAP is handed exact nearest neighbours (brute force,
scikit-learn; 5000 × 2048 takes a few seconds) rather than building its approximate
NN-descent graph: exact, and it spares pynndescent's numba compilation, which costs
about 40 s in every fresh process.  ``umap-learn`` still compiles its own kernels with
numba on first use (about 10–15 s per fresh process), so embed many layers in one
process.  It is imported only when ``method="umap"``.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["embed_2d", "METHODS", "MIN_UMAP_POINTS"]

METHODS = ("umap", "tsne", "pca")
MIN_UMAP_POINTS = 4  # below: PCA (UMAP's spectral init and k-NN graph need a few points)
EXACT_KNN_MAX = 10_000  # up to here UMAP gets exact neighbours (brute force) instead of NN-descent
_EXACT_METRICS = ("euclidean", "cosine", "manhattan", "chebyshev", "correlation")


def _check(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n points × d features), not shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: no points to embed")
    if X.shape[1] == 0:
        raise ValueError("X has no features (d = 0)")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"X must be real-valued, not dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise ValueError(f"X has non-finite values (NaN or infinite) in {bad} row(s)")
    return X


def _pca_2d(X: np.ndarray) -> np.ndarray:
    """The first two principal components' scores (zero where the rank is lower), from the
    eigendecomposition of the smaller Gram / covariance matrix; each component's sign fixed
    so that its largest-magnitude score is positive."""
    n, d = X.shape
    out = np.zeros((n, 2))
    if n < 2:
        return out
    Xc = X - X.mean(axis=0)
    from scipy.linalg import eigh

    small = Xc @ Xc.T if n <= d else Xc.T @ Xc
    m = small.shape[0]
    w, v = eigh(small, subset_by_index=[max(0, m - 2), m - 1])  # the two largest, ascending
    w, v = w[::-1], v[:, ::-1]
    tol = max(float(np.trace(small)), 0.0) * max(n, d) * np.finfo(float).eps * 10
    k = min(2, int((w > tol).sum()))
    for j in range(k):
        score = v[:, j] * np.sqrt(w[j]) if n <= d else Xc @ v[:, j]
        i = int(np.argmax(np.abs(score)))
        out[:, j] = score if score[i] >= 0 else -score
    return out


def _exact_knn(X: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows (itself first), by brute force (scikit-learn)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X)
    dist, idx = nn.kneighbors(X)
    return idx.astype(np.int32), dist.astype(np.float32)


def _umap(X: np.ndarray, seed: int, n_neighbors: int, metric: str, min_dist: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ParametricUMAP.*", category=ImportWarning)
        try:
            import umap  # numba-compiled; lazily imported (slow first import)
        except ImportError as e:
            raise ImportError("embed_2d(method='umap') needs the umap-learn package (pip install umap-learn, "
                              "pinned in pyproject.toml / constraints.txt); method='tsne' or 'pca' do without it"
                              ) from e

    kw = {}
    if X.shape[0] <= EXACT_KNN_MAX and metric in _EXACT_METRICS:
        idx, dist = _exact_knn(X, n_neighbors, metric)
        kw["precomputed_knn"] = (idx, dist, None)
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": that is the point of the seed.
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*", category=UserWarning)
        # Few points: UMAP's spectral init may fall back to random init (still seeded).
        warnings.filterwarnings("ignore", message=".*[Ss]pectral initialisation failed.*")
        # Exact neighbours come without a search index: UMAP.transform of new points is off (unused).
        warnings.filterwarnings("ignore", message=".*knn_search_index.*", category=UserWarning)
        reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                            random_state=seed, transform_seed=seed, n_jobs=1, **kw)
        Y = reducer.fit_transform(X)
    return np.asarray(Y, dtype=np.float64)


def _tsne(X: np.ndarray, seed: int, n_neighbors: int, metric: str) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = X.shape[0]
    perplexity = max(1.0, min(float(n_neighbors), 30.0, (n - 1) / 3.0))  # ≈ effective number of neighbours
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric=metric,
                learning_rate="auto")
    return np.asarray(tsne.fit_transform(X), dtype=np.float64)


def embed_2d(X: np.ndarray, seed: int = 0, n_neighbors: int = 15, method: str = "umap", *,
             metric: str = "euclidean", min_dist: float = 0.1) -> np.ndarray:
    """Embed the rows of ``X`` in two dimensions.

    Parameters
    ----------
    X : array, n × d
        One point per row (an image's flattened activations, or a category's
        representative vector).  Must be finite.
    seed : int
        Random state of UMAP / t-SNE: the same seed gives the same map.
    n_neighbors : int
        UMAP's neighbourhood size (local vs. global structure), capped at n − 1; for
        t-SNE it is the perplexity (an effective number of neighbours), at most 30 and
        (n − 1) / 3.
    method : {"umap", "tsne", "pca"}
        ``"umap"`` (Dai, Fig. 9) needs at least :data:`MIN_UMAP_POINTS` points; fewer are
        placed by PCA, with a logged note.  ``"tsne"`` needs at least 4 as well.
    metric : str
        Distance between rows for UMAP / t-SNE (``"euclidean"``, ``"cosine"`` — Dai's
        category distance is ½(1 − cos)).
    min_dist : float
        UMAP's minimum distance between embedded points.

    Returns
    -------
    array, n × 2 (float64)
        A single point is placed at the origin.

    Raises
    ------
    ValueError
        ``X`` not 2-D, empty, with no features or non-finite values; an unknown
        ``method``; ``n_neighbors`` < 2.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if int(n_neighbors) < 2:
        raise ValueError(f"n_neighbors must be at least 2, not {n_neighbors}")
    X = _check(X)
    n = X.shape[0]
    if method == "pca":
        return _pca_2d(X)
    if n < MIN_UMAP_POINTS:
        log.info("embed_2d: %d point(s) are too few for %s (needs %d): placed by PCA instead", n, method,
                 MIN_UMAP_POINTS)
        return _pca_2d(X)
    if np.ptp(X, axis=0).max() == 0:
        log.info("embed_2d: all %d points are identical: placed at the origin", n)
        return np.zeros((n, 2))
    k = min(int(n_neighbors), n - 1)
    if k < int(n_neighbors):
        log.info("embed_2d: n_neighbors %d capped at n − 1 = %d", n_neighbors, k)
    if method == "tsne":
        return _tsne(X, seed, k, metric)
    return _umap(X, seed, k, metric, min_dist)
