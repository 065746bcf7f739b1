"""Hierarchical clustering of concepts and filters from cached CNN activations.

Implements section 3 of Dai et al., "What do CNN neurons learn: visualization &
clustering" (Algorithm 1: an unsupervised category hierarchy from representative
vectors; Algorithm 2: a filter-wise prediction tree of one category), and adds what
the paper lacks: agreement between a layer's hierarchy and a reference hierarchy
(e.g. one built from word vectors), with a permutation null seeded exactly like the
2 vs. 2 nulls of :mod:`wordlens.stats`.

Representative vectors (Dai §3.1)
    The representative vector of a concept is the mean of its images' activation
    rows (:func:`representative_vectors`), read from the HDF5 activation cache in
    feature blocks so that a wide layer is never held in memory.

Category distance
    ``½(1 − cos(μ_a, μ_b))`` (Dai) or ``1 − Pearson(μ_a, μ_b)``
    (:func:`category_distances`).

Algorithm 1 is WPGMA
    Dai's Algorithm 1 repeatedly merges the two root nodes joined by the shortest
    edge into a super-node whose edge to every other root node is the mean of its two
    children's edges.  That is exactly weighted-pair-group average linkage (WPGMA,
    ``scipy.cluster.hierarchy.linkage(..., method="weighted")``), which
    :func:`dai_hierarchy` uses by default (tests/test_clustering.py compares it with a
    literal transcription of the pseudocode).  ``method="average"`` gives UPGMA.

Agreement between hierarchies (beyond Dai)
    :func:`cophenetic_correlation` (Pearson between cophenetic distances) and
    :func:`fowlkes_mallows` (pair-counting agreement of the partitions at a cut into
    k clusters), bundled by :func:`agreement`; :func:`agreement_null` is their null
    under relabelling of the layer's concepts, :func:`agreement_pvalues` their
    permutation p-values (:func:`wordlens.stats.permutation_pvalue`).

Export
    :func:`to_newick` and :func:`to_json`.

Linkage matrices follow scipy's convention: leaves are 0 … w − 1, the node made by
row i of ``Z`` is w + i, and the root is 2w − 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "add_noise_category",
    "agreement",
    "agreement_keys",
    "agreement_null",
    "agreement_pvalues",
    "category_distances",
    "cophenetic_correlation",
    "critical_filter_top_images",
    "dai_hierarchy",
    "fowlkes_mallows",
    "minimum_spanning_tree",
    "prediction_tree",
    "representative_vectors",
    "to_json",
    "to_newick",
]

#: Methods accepted by :func:`dai_hierarchy`: Dai's Algorithm 1 (WPGMA) and UPGMA.
METHODS = ("weighted", "average")
#: Metrics accepted by :func:`category_distances`.
METRICS = ("cosine", "correlation")
#: Tolerance on asymmetry and on the diagonal of a distance matrix (relative to its largest entry).
DISTANCE_RTOL = 1e-10


# --------------------------------------------------------------------------------------
# Representative vectors
# --------------------------------------------------------------------------------------


def _concept_label(index: int, names: Sequence[str] | None) -> str:
    return f"concept {index} ({names[index]!r})" if names is not None else f"concept {index}"


def _layer_shape(dset: Any) -> tuple[int, ...] | None:
    """``layer_shape`` from the dataset's or its file's HDF5 attributes, if any."""
    for holder in (dset, getattr(dset, "file", None)):
        attrs = getattr(holder, "attrs", None)
        if attrs is not None and "layer_shape" in attrs:
            return tuple(int(s) for s in np.asarray(attrs["layer_shape"]).ravel())
    return None


def _concept_rows(rows_per_concept: Sequence[Any], n_images: int, names: Sequence[str] | None) -> list[np.ndarray]:
    out = []
    for c, rows in enumerate(rows_per_concept):
        if isinstance(rows, slice):
            idx = np.arange(*rows.indices(n_images), dtype=np.int64)
        else:
            arr = np.asarray(rows)
            if arr.dtype == bool:
                if arr.shape != (n_images,):
                    raise ValueError(
                        f"{_concept_label(c, names)}: a boolean row mask must have one entry per image "
                        f"({n_images}); got shape {arr.shape}"
                    )
                idx = np.flatnonzero(arr)
            else:
                if arr.size and not np.issubdtype(arr.dtype, np.integer):
                    raise ValueError(f"{_concept_label(c, names)}: row indices must be integers; got dtype {arr.dtype}")
                idx = arr.astype(np.int64).ravel()
        if idx.size == 0:
            raise ValueError(f"{_concept_label(c, names)} has no image rows; every concept needs at least one image")
        bad = idx[(idx < 0) | (idx >= n_images)]
        if bad.size:
            raise ValueError(
                f"{_concept_label(c, names)}: row index {int(bad[0])} is outside 0..{n_images - 1} "
                f"(the activation dataset has {n_images} images)"
            )
        out.append(idx)
    return out


def representative_vectors(
    dset: Any,
    rows_per_concept: Sequence[np.ndarray | slice | Sequence[int]],
    shape: Sequence[int] | None = None,
    channel_mean: bool = False,
    block_features: int = 65536,
    *,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Representative vector of each concept: the mean of its images' activation rows (Dai §3.1).

    The rows of all concepts are read together in blocks of ``block_features``
    features (``dset[rows, a:b]``), so peak memory is O(n_rows × block_features +
    w × d_out) — n_rows the number of distinct rows of all concepts, d_out the output
    width — whatever the width of the layer: one block in the file's dtype, plus
    (with ``channel_mean``) the w × block float64 block means, plus the output.  Sums
    are accumulated in float64 without a float64 copy of the block.

    Parameters
    ----------
    dset
        n_images × n_features activations: an ``h5py.Dataset`` (the ``activations``
        dataset of an activation file, see :func:`wordlens.activations.open_activations`),
        a numpy array or any object with a 2-D ``shape`` and ``[rows, a:b]`` slicing
        (rows given as a slice or a sorted array of distinct indices).
    rows_per_concept
        For each of the w ≥ 3 concepts, its images' rows: an integer array (a row
        listed twice counts twice), a boolean mask over the images, or a slice.
    shape
        The layer's output shape, C × H × W (any C × spatial shape) in the C-order
        flattening of the cache.  Required for ``channel_mean``; default: the
        ``layer_shape`` attribute of the dataset or its file.  When given (or found)
        its product must equal n_features.
    channel_mean
        Average each channel's spatial positions first: the output is w × C instead
        of w × n_features.
    block_features
        Features per read.  When the dataset is chunked and the block is at least one
        chunk wide, it is rounded down to a whole number of chunks.
    names
        Concept names, used only in error messages.

    Returns
    -------
    numpy.ndarray
        w × n_features (or w × C with ``channel_mean``), float64, row c the mean of
        concept c's rows.

    Raises
    ------
    ValueError
        If fewer than 3 concepts are given, a concept has no rows (its index and
        name are named) or a row outside the dataset, ``shape`` does not match the
        width, ``channel_mean`` is asked for without a shape, ``block_features`` is
        not positive, or a mean is not finite.
    """
    dshape = getattr(dset, "shape", None)
    if dshape is None:
        dset = np.asarray(dset)
        dshape = dset.shape
    if len(dshape) != 2:
        raise ValueError(f"activations must be 2-D (images × features); got shape {tuple(dshape)}")
    n_images, n_features = int(dshape[0]), int(dshape[1])
    if n_features < 1:
        raise ValueError("the activation dataset has no features")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(rows_per_concept):
            raise ValueError(
                f"names has {len(names)} entries but rows_per_concept has {len(rows_per_concept)} concepts"
            )
    w = len(rows_per_concept)
    if w < 3:
        raise ValueError(f"representative vectors need at least 3 concepts to cluster; got {w}")
    if isinstance(block_features, bool) or not isinstance(block_features, (int, np.integer)) or block_features < 1:
        raise ValueError(f"block_features must be a positive integer; got {block_features!r}")
    rows = _concept_rows(rows_per_concept, n_images, names)

    if shape is None:
        shape = _layer_shape(dset)
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) == 0 or any(s < 1 for s in shape):
            raise ValueError(f"layer shape must be a non-empty tuple of positive sizes; got {shape}")
        if math.prod(shape) != n_features:
            raise ValueError(
                f"layer shape {shape} has {math.prod(shape)} features but the activations have {n_features}"
            )
    if channel_mean and shape is None:
        raise ValueError(
            "channel_mean=True needs the layer shape (C, H, W): pass shape= or use a file with layer_shape"
        )
    spatial = math.prod(shape[1:]) if channel_mean else 1
    n_out = n_features // spatial

    # All rows read at once, sorted and distinct (h5py needs increasing indices).
    union, inverse = np.unique(np.concatenate(rows), return_inverse=True)
    inverse = inverse.ravel()
    contiguous = union.size == union[-1] - union[0] + 1
    selector: slice | np.ndarray = slice(int(union[0]), int(union[-1]) + 1) if contiguous else union
    # Where each concept's rows sit in the block read: a slice (a view, no copy) when
    # they are consecutive there, else an index array (a copy of only its rows).
    where: list[slice | np.ndarray] = []
    start = 0
    for r in rows:
        pos = inverse[start:start + r.size]
        start += r.size
        consecutive = pos.size == 1 or bool(np.all(np.diff(pos) == 1))
        where.append(slice(int(pos[0]), int(pos[0]) + pos.size) if consecutive else pos)
    counts = np.array([r.size for r in rows], dtype=np.float64)

    block = int(block_features)
    chunks = getattr(dset, "chunks", None)
    if chunks and block >= chunks[1]:
        block -= block % chunks[1]

    out = np.zeros((w, n_out), dtype=np.float64)
    means = np.empty((w, min(block, n_features)), dtype=np.float64) if channel_mean else None
    for a in range(0, n_features, block):
        b = min(n_features, a + block)
        data = np.asarray(dset[selector, a:b])
        if data.shape != (union.size, b - a):
            raise ValueError(f"activations[rows, {a}:{b}] returned shape {data.shape}, expected {(union.size, b - a)}")
        target = means[:, : b - a] if channel_mean else out[:, a:b]
        for c, sel in enumerate(where):
            # Summed in float64 without a float64 copy of the block.
            np.add.reduce(data[sel], axis=0, dtype=np.float64, out=target[c])
        target /= counts[:, None]
        del data
        if not np.isfinite(target).all():
            c, f = np.argwhere(~np.isfinite(target))[0]
            raise ValueError(
                f"{_concept_label(int(c), names)}: the mean activation of feature {a + int(f)} is not finite; "
                "activations must be finite"
            )
        if channel_mean:
            channel = np.arange(a, b) // spatial
            starts = np.flatnonzero(np.r_[True, channel[1:] != channel[:-1]])
            out[:, channel[0]:channel[-1] + 1] += np.add.reduceat(target, starts, axis=1)
    if channel_mean:
        out /= spatial
    return out


def add_noise_category(
    vectors: np.ndarray,
    names: Sequence[str],
    noise_vector: np.ndarray,
    name: str = "noise",
) -> tuple[np.ndarray, list[str]]:
    """Append a random-noise pseudo-category (Dai Fig. 8, "including random noise as a category").

    The caller computes ``noise_vector`` like any representative vector, e.g. with
    :func:`representative_vectors` over the activation rows of random-noise images run
    through the same model and layer (with the same ``channel_mean``); this function
    only appends it as the last row, named ``name``.

    Parameters
    ----------
    vectors
        w × d representative vectors.
    names
        The w concept names.
    noise_vector
        The d-vector of the noise images.
    name
        Name of the pseudo-category (must not already be a concept name).

    Returns
    -------
    (numpy.ndarray, list of str)
        (w + 1) × d vectors and the w + 1 names.
    """
    V = np.asarray(vectors, dtype=np.float64)
    v = np.asarray(noise_vector, dtype=np.float64).ravel()
    names = [str(n) for n in names]
    if V.ndim != 2:
        raise ValueError(f"vectors must be 2-D (concepts × features); got shape {V.shape}")
    if len(names) != V.shape[0]:
        raise ValueError(f"names has {len(names)} entries but vectors has {V.shape[0]} rows")
    if v.size != V.shape[1]:
        raise ValueError(f"the noise vector has {v.size} features but the representative vectors have {V.shape[1]}")
    if name in names:
        raise ValueError(f"a concept is already named {name!r}; choose another name for the noise category")
    return np.vstack([V, v[None, :]]), [*names, str(name)]


# --------------------------------------------------------------------------------------
# Distances, hierarchy, MST
# --------------------------------------------------------------------------------------


def category_distances(
    vectors: np.ndarray,
    metric: str = "cosine",
    *,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Square matrix of distances between representative vectors.

    Parameters
    ----------
    vectors
        w × d representative vectors (w ≥ 2).
    metric
        ``"cosine"``: ``½(1 − cos(μ_a, μ_b))`` in [0, 1] (Dai's Algorithm 1);
        ``"correlation"``: ``1 − Pearson(μ_a, μ_b)`` in [0, 2].
    names
        Concept names, used only in error messages.

    Returns
    -------
    numpy.ndarray
        w × w, float64, symmetric, zero diagonal.

    Raises
    ------
    ValueError
        For an unknown metric, non-finite values, or a vector whose cosine
        (all zeros) or correlation (constant) is undefined — the concepts are named.
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {list(METRICS)}")
    V = np.asarray(vectors, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] < 2:
        raise ValueError(f"vectors must be 2-D with at least 2 concepts (rows); got shape {V.shape}")
    if not np.isfinite(V).all():
        raise ValueError(f"vectors hold non-finite values, first in row {int(np.argwhere(~np.isfinite(V))[0, 0])}")
    return distances_from_gram(V @ V.T, V.sum(axis=1), V.shape[1], metric, names=names)


def distances_from_gram(G: np.ndarray, sums: np.ndarray, n_features: int, metric: str = "cosine", *,
                        names: Sequence[str] | None = None) -> np.ndarray:
    """:func:`category_distances` from the Gram matrix ``G = V Vᵀ`` of the w × d vectors,
    their row sums and d: cosine from ``G`` itself, correlation from the centred Gram
    matrix ``G − s sᵀ / d``.  This is what lets :func:`representative_distances` work
    without ever holding V."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {list(METRICS)}")
    G = np.asarray(G, dtype=np.float64)
    scale = np.sqrt(np.maximum(np.diag(G), 0.0))
    if metric == "correlation":
        s = np.asarray(sums, dtype=np.float64)
        G = G - np.outer(s, s) / float(n_features)
    norm = np.sqrt(np.maximum(np.diag(G), 0.0))
    zero = norm <= 1e-12 * np.maximum(scale, np.finfo(float).tiny)
    if zero.any():
        which = ", ".join(_concept_label(int(i), names) for i in np.flatnonzero(zero)[:10])
        kind = "all-zero" if metric == "cosine" else "constant"
        raise ValueError(
            f"{int(zero.sum())} {kind} representative vector(s) ({which}): the {metric} distance is undefined"
        )
    sim = np.clip(G / np.outer(norm, norm), -1.0, 1.0)
    D = 0.5 * (1.0 - sim) if metric == "cosine" else 1.0 - sim
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    return np.maximum(D, 0.0)


class _Columns:
    """Features [a, b) of a 2-D activation dataset, read as ``dset[rows, i:j]``."""

    def __init__(self, dset: Any, a: int, b: int) -> None:
        self.dset, self.a = dset, a
        self.shape = (int(dset.shape[0]), b - a)
        self.chunks = getattr(dset, "chunks", None)

    def __getitem__(self, key: tuple[Any, slice]) -> np.ndarray:
        rows, cols = key
        return self.dset[rows, self.a + cols.start: self.a + cols.stop]


def representative_distances(
    dset: Any,
    rows_per_concept: Sequence[np.ndarray | slice | Sequence[int]],
    metric: str = "cosine",
    shape: Sequence[int] | None = None,
    channel_mean: bool = False,
    slab_features: int = 1 << 18,
    block_features: int = 65536,
    *,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """:func:`category_distances` of the :func:`representative_vectors`, in memory
    bounded whatever the layer's width: the vectors are made ``slab_features`` features
    at a time and only their Gram matrix and row sums are kept
    (:func:`distances_from_gram`), so peak memory is O(w² + w × slab + n_rows × block)
    instead of the w × d of the vectors (838 concepts × 802,816 features of ResNet-50's
    first ReLU would be 5.4 GB).  With ``channel_mean`` the vectors are only w × C and
    are made whole."""
    if channel_mean:
        return category_distances(representative_vectors(dset, rows_per_concept, shape, True, block_features,
                                                         names=names), metric, names=names)
    if isinstance(slab_features, bool) or not isinstance(slab_features, (int, np.integer)) or slab_features < 1:
        raise ValueError(f"slab_features must be a positive integer; got {slab_features!r}")
    n_features = int(dset.shape[1])
    if shape is None:
        shape = _layer_shape(dset)
    if shape is not None and math.prod(int(x) for x in shape) != n_features:
        raise ValueError(f"layer shape {tuple(shape)} has {math.prod(int(x) for x in shape)} features but the "
                         f"activations have {n_features}")
    G = sums = None
    for a in range(0, n_features, int(slab_features)):
        b = min(n_features, a + int(slab_features))
        M = representative_vectors(_Columns(dset, a, b), rows_per_concept, (b - a,), False, block_features,
                                   names=names)
        G = M @ M.T if G is None else G + M @ M.T
        sums = M.sum(axis=1) if sums is None else sums + M.sum(axis=1)
        del M
    return distances_from_gram(G, sums, n_features, metric, names=names)


def _as_distance_matrix(D: Any, name: str = "D") -> np.ndarray:
    try:
        M = np.asarray(D, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric matrix: {err}") from err
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square distance matrix; got shape {M.shape}")
    if M.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 items; got {M.shape[0]}")
    if not np.isfinite(M).all():
        i, j = np.argwhere(~np.isfinite(M))[0]
        raise ValueError(f"{name} has a non-finite entry at [{i}, {j}]")
    if (M < 0).any():
        i, j = np.argwhere(M < 0)[0]
        raise ValueError(f"{name} has a negative distance {M[i, j]} at [{i}, {j}]")
    tol = DISTANCE_RTOL * max(1.0, float(M.max()))
    if np.abs(M - M.T).max() > tol:
        i, j = np.unravel_index(int(np.abs(M - M.T).argmax()), M.shape)
        raise ValueError(f"{name} is not symmetric: [{i}, {j}] = {M[i, j]} but [{j}, {i}] = {M[j, i]}")
    if np.abs(np.diag(M)).max() > tol:
        i = int(np.abs(np.diag(M)).argmax())
        raise ValueError(f"{name} must have a zero diagonal; [{i}, {i}] = {M[i, i]}")
    M = (M + M.T) / 2
    np.fill_diagonal(M, 0.0)
    return M


def dai_hierarchy(D: np.ndarray, method: str = "weighted") -> np.ndarray:
    """Agglomerative hierarchy of the categories (Dai's Algorithm 1) as a scipy linkage matrix.

    Dai's Algorithm 1 repeatedly takes the shortest edge between two parentless nodes,
    joins its ends under a new super-node and re-links every other parentless node to
    the super-node with the MEAN of its two edges to the children.  This is WPGMA
    (weighted pair-group method with arithmetic mean), ``method="weighted"``.
    ``method="average"`` is UPGMA (the super-node's distance is the size-weighted
    mean, i.e. the mean over all pairs of member categories).

    Parameters
    ----------
    D
        w × w distance matrix (symmetric, zero diagonal, non-negative), e.g. from
        :func:`category_distances`.
    method
        ``"weighted"`` (Dai, WPGMA) or ``"average"`` (UPGMA).

    Returns
    -------
    numpy.ndarray
        The (w − 1) × 4 linkage matrix of ``scipy.cluster.hierarchy.linkage(squareform(D), method)``.
    """
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {list(METHODS)} (Dai's Algorithm 1 is 'weighted')")
    M = _as_distance_matrix(D)
    return linkage(squareform(M, checks=False), method=method)


def minimum_spanning_tree(D: np.ndarray) -> list[tuple[int, int, float]]:
    """Minimum spanning tree of the dense graph whose edge (i, j) has weight ``D[i, j]`` (Dai Fig. 8).

    ``scipy.sparse.csgraph`` reads a dense matrix's zero entries — and, through
    ``numpy.ma.masked_values``, any entry within 1e-8 of zero — as "no edge".  A zero
    or tiny distance between two distinct concepts is a real edge here, so the MST
    is computed on the ranks of the off-diagonal distances (1, 2, …; equal distances
    share a rank).  An MST depends only on the order of the weights, so this is the
    MST of D, with every edge kept; the returned weights are the original ones.

    Parameters
    ----------
    D
        w × w distance matrix (symmetric, zero diagonal, non-negative), w ≥ 2.

    Returns
    -------
    list of (int, int, float)
        The w − 1 edges ``(i, j, D[i, j])`` with i < j, sorted by weight, then i, then j.
    """
    from scipy.sparse.csgraph import minimum_spanning_tree as csgraph_mst

    M = _as_distance_matrix(D)
    w = M.shape[0]
    iu = np.triu_indices(w, 1)
    ranks = np.unique(M[iu], return_inverse=True)[1].ravel() + 1.0
    W = np.zeros_like(M)
    W[iu] = ranks
    tree = csgraph_mst(W).tocoo()
    edges = sorted(
        ((min(int(i), int(j)), max(int(i), int(j))) for i, j in zip(tree.row, tree.col, strict=True)),
        key=lambda e: (M[e], e),
    )
    if len(edges) != M.shape[0] - 1:  # cannot happen for a dense graph
        raise RuntimeError(f"the MST of {M.shape[0]} nodes has {len(edges)} edges")
    return [(i, j, float(M[i, j])) for i, j in edges]


# --------------------------------------------------------------------------------------
# Agreement between hierarchies
# --------------------------------------------------------------------------------------


def _check_linkage(Z: Any, name: str) -> np.ndarray:
    from scipy.cluster.hierarchy import is_valid_linkage

    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != 4 or Z.shape[0] < 1:
        raise ValueError(f"{name} must be a (w − 1) × 4 scipy linkage matrix; got shape {Z.shape}")
    try:
        is_valid_linkage(Z, throw=True, name=name)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not a valid linkage matrix: {err}") from err
    return Z


def _check_pair(Z_a: Any, Z_b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    Z_a, Z_b = _check_linkage(Z_a, names[0]), _check_linkage(Z_b, names[1])
    if Z_a.shape != Z_b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} cluster different numbers of concepts: "
            f"{Z_a.shape[0] + 1} and {Z_b.shape[0] + 1}"
        )
    return Z_a, Z_b


def _pearson(x: np.ndarray, y: np.ndarray, what: str) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    sx, sy = math.sqrt(float(xc @ xc)), math.sqrt(float(yc @ yc))
    for s, v, label in ((sx, x, "the layer's"), (sy, y, "the reference's")):
        if s <= 1e-12 * max(float(np.abs(v).max()), np.finfo(float).tiny) * math.sqrt(v.size):
            raise ValueError(f"{what}: {label} cophenetic distances are all equal; the correlation is undefined")
    return float(xc @ yc) / (sx * sy)


def cophenetic_correlation(Z: np.ndarray, reference: np.ndarray, *, reference_kind: str = "linkage") -> float:
    """Pearson correlation between the cophenetic distances of ``Z`` and of a reference.

    The cophenetic distance of two concepts is the height of the node where they are
    first joined (``scipy.cluster.hierarchy.cophenet``).

    Parameters
    ----------
    Z
        The layer's linkage matrix (w − 1) × 4.
    reference
        The reference hierarchy as its own linkage matrix (default), or, with
        ``reference_kind="distance"``, a w × w distance matrix compared as it is
        (then the statistic is scipy's classic cophenetic correlation coefficient).
    reference_kind
        ``"linkage"`` or ``"distance"`` (explicit, because a 4 × 4 distance matrix
        and the linkage of 5 concepts have the same shape).

    Returns
    -------
    float
        In [−1, 1].
    """
    from scipy.cluster.hierarchy import cophenet
    from scipy.spatial.distance import squareform

    if reference_kind == "linkage":
        Z, R = _check_pair(Z, reference, ("Z", "reference"))
        y = cophenet(R)
    elif reference_kind == "distance":
        Z = _check_linkage(Z, "Z")
        M = _as_distance_matrix(reference, "reference")
        if M.shape[0] != Z.shape[0] + 1:
            raise ValueError(f"reference has {M.shape[0]} concepts but Z clusters {Z.shape[0] + 1}")
        y = squareform(M, checks=False)
    else:
        raise ValueError(f"reference_kind {reference_kind!r} is not 'linkage' or 'distance'")
    return _pearson(cophenet(Z), y, "cophenetic_correlation")


def _check_cut(k: Any, w: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"a cut must be an integer number of clusters; got {k!r}")
    if not 1 <= int(k) <= w:
        raise ValueError(f"cannot cut {w} concepts into k = {int(k)} clusters; k must be in 1..{w}")
    return int(k)


def _cut_labels(Z: np.ndarray, k: int) -> np.ndarray:
    """0-based cluster labels of the cut of ``Z`` into at most k clusters (fcluster ``maxclust``)."""
    from scipy.cluster.hierarchy import fcluster

    labels = fcluster(Z, t=k, criterion="maxclust")
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def _pairs(n: np.ndarray) -> float:
    n = n.astype(np.float64)
    return float((n * (n - 1.0)).sum() / 2.0)


def _fm_from_labels(a: np.ndarray, b: np.ndarray) -> float:
    """FM = TP / sqrt((TP + FP)(TP + FN)) over concept pairs (0 when no pair is together in both)."""
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb)
    tp = _pairs(table)
    if tp == 0.0:
        return 0.0
    return tp / math.sqrt(_pairs(np.bincount(a, minlength=ka)) * _pairs(np.bincount(b, minlength=kb)))


def fowlkes_mallows(Z_a: np.ndarray, Z_b: np.ndarray, k: int) -> float:
    """Fowlkes–Mallows index between the cuts of two hierarchies into k clusters.

    Each hierarchy is cut with ``scipy.cluster.hierarchy.fcluster(Z, k,
    criterion="maxclust")`` (at most k clusters: fewer where merge heights tie).
    Over the w(w − 1)/2 concept pairs, TP counts the pairs in one cluster in both
    cuts, TP + FP those in one cluster of the first cut, TP + FN those of the second;
    ``FM = TP / sqrt((TP + FP)(TP + FN))``, and 0 when TP = 0 (as scikit-learn).

    Parameters
    ----------
    Z_a, Z_b
        Linkage matrices over the same w concepts.
    k
        Number of clusters, 1 ≤ k ≤ w (k = 1 gives 1, k = w gives 0).

    Returns
    -------
    float
        In [0, 1].
    """
    Z_a, Z_b = _check_pair(Z_a, Z_b, ("Z_a", "Z_b"))
    k = _check_cut(k, Z_a.shape[0] + 1)
    return _fm_from_labels(_cut_labels(Z_a, k), _cut_labels(Z_b, k))


def _check_cuts(cuts: Sequence[int], w: int) -> list[int]:
    if isinstance(cuts, (int, np.integer)):
        raise ValueError(f"cuts must be a sequence of cluster counts, e.g. [{cuts}]; got the integer {cuts}")
    out = [_check_cut(k, w) for k in cuts]
    if len(set(out)) != len(out):
        raise ValueError(f"cuts must be distinct; got {list(cuts)}")
    return out


def agreement_keys(cuts: Sequence[int]) -> list[str]:
    """Names of the agreement statistics, in the column order of :func:`agreement_null`:
    ``"cophenetic"``, then ``"fowlkes_mallows_k{k}"`` for each cut in the given order."""
    return ["cophenetic", *(f"fowlkes_mallows_k{int(k)}" for k in cuts)]


def agreement(Z_layer: np.ndarray, Z_ref: np.ndarray, cuts: Sequence[int]) -> dict[str, float]:
    """Agreement between a layer's hierarchy and a reference hierarchy over the same concepts.

    Parameters
    ----------
    Z_layer, Z_ref
        Linkage matrices (e.g. :func:`dai_hierarchy` of a layer's and of the word
        vectors' category distances).
    cuts
        Distinct numbers of clusters at which the Fowlkes–Mallows index is computed.

    Returns
    -------
    dict
        ``{"cophenetic": r, "fowlkes_mallows_k{k}": FM, ...}`` in the order of
        :func:`agreement_keys`.
    """
    Z_layer, Z_ref = _check_pair(Z_layer, Z_ref, ("Z_layer", "Z_ref"))
    cuts = _check_cuts(cuts, Z_layer.shape[0] + 1)
    out = {"cophenetic": cophenetic_correlation(Z_layer, Z_ref)}
    for k in cuts:
        out[f"fowlkes_mallows_k{k}"] = _fm_from_labels(_cut_labels(Z_layer, k), _cut_labels(Z_ref, k))
    return out


def _check_perm_range(seed: Any, start: Any, stop: Any) -> tuple[int, int, int]:
    for name, val in (("seed", seed), ("start", start), ("stop", stop)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
            raise ValueError(f"{name} must be an integer; got {val!r}")
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0; got {seed}")
    if start < 0:
        raise ValueError(f"start must be ≥ 0; got {start}")
    if stop < start:
        raise ValueError(f"stop must be ≥ start; got start = {start}, stop = {stop}")
    return int(seed), int(start), int(stop)


def agreement_null(
    Z_layer: np.ndarray,
    Z_ref: np.ndarray,
    cuts: Sequence[int],
    seed: int,
    start: int,
    stop: int,
) -> np.ndarray:
    """Permutation null of :func:`agreement`: the layer's concepts relabelled at random.

    Permutation p (for p in ``[start, stop)``) is ``π = numpy.random.default_rng([seed,
    p]).permutation(w)`` (:func:`wordlens.stats.permutation`, the same stream as the
    2 vs. 2 nulls): concept i of the layer takes the data of concept π[i], i.e. the
    layer's distances become ``D[π][:, π]``.  Average-linkage clustering (WPGMA or
    UPGMA) is equivariant under relabelling — the hierarchy of ``D[π][:, π]`` is the
    hierarchy of D with its leaves relabelled — so no re-clustering is done: the
    layer's cophenetic matrix C becomes ``C[π][:, π]`` and its cluster labels at each
    cut ``labels[π]``, against the fixed reference.  (This holds exactly when no two
    merge heights tie; with ties, re-clustering might break them differently.  The
    tests check it against literal re-clustering of permuted distances.)

    Each value depends only on (seed, p), so the null can be computed in any chunks:
    ``agreement_null(..., 0, 100)`` equals the concatenation of ``(0, 40)`` and
    ``(40, 100)`` exactly.

    Parameters
    ----------
    Z_layer, Z_ref
        Linkage matrices over the same w concepts.
    cuts
        Distinct numbers of clusters for the Fowlkes–Mallows indices.
    seed
        Seed of the permutation stream (≥ 0).
    start, stop
        The permutations computed, ``[start, stop)``.

    Returns
    -------
    numpy.ndarray
        (stop − start) × (1 + len(cuts)), float64; columns in the order of
        :func:`agreement_keys` (cophenetic correlation, then FM at each cut).
    """
    from scipy.cluster.hierarchy import cophenet
    from scipy.spatial.distance import squareform

    from wordlens.stats import permutation

    Z_layer, Z_ref = _check_pair(Z_layer, Z_ref, ("Z_layer", "Z_ref"))
    w = Z_layer.shape[0] + 1
    cuts = _check_cuts(cuts, w)
    seed, start, stop = _check_perm_range(seed, start, stop)
    # Cophenetic correlation: the multiset of the layer's condensed values, hence its
    # mean and norm, does not change under relabelling; only the pairing with the
    # reference does.  r = Σ_{i<j} Cc[π_i, π_j] Rc[i, j] / (|Cc| |Rc|).
    x, y = cophenet(Z_layer), cophenet(Z_ref)
    _pearson(x, y, "agreement_null")  # raises on constant cophenetic distances
    xc, yc = x - x.mean(), y - y.mean()
    Cc, Rc = squareform(xc, checks=False), squareform(yc, checks=False)  # zero diagonals
    Rc *= 0.5 / (math.sqrt(float(xc @ xc)) * math.sqrt(float(yc @ yc)))  # ½: each pair counted twice
    layer_labels = [_cut_labels(Z_layer, k) for k in cuts]
    ref_labels = [_cut_labels(Z_ref, k) for k in cuts]
    fm_parts = []
    for a, b in zip(layer_labels, ref_labels, strict=True):
        ka, kb = int(a.max()) + 1, int(b.max()) + 1
        denom = math.sqrt(_pairs(np.bincount(a, minlength=ka)) * _pairs(np.bincount(b, minlength=kb)))
        fm_parts.append((a, b, ka, kb, denom))
    out = np.empty((stop - start, 1 + len(cuts)), dtype=np.float64)
    rows_buf, both_buf = np.empty_like(Cc), np.empty_like(Cc)  # reused: no page faults per permutation
    for row, p in enumerate(range(start, stop)):
        perm = permutation(w, seed, p)
        np.take(Cc, perm, axis=0, out=rows_buf)
        np.take(rows_buf, perm, axis=1, out=both_buf)  # C[π][:, π]
        out[row, 0] = float(np.einsum("ij,ij->", both_buf, Rc))
        for col, (a, b, ka, kb, denom) in enumerate(fm_parts, start=1):
            tp = _pairs(np.bincount(a[perm] * kb + b, minlength=ka * kb))
            out[row, col] = 0.0 if tp == 0.0 else tp / denom
    return out


def agreement_pvalues(observed: Mapping[str, float], null: np.ndarray) -> dict[str, float]:
    """One-sided permutation p-values ``(1 + #{null ≥ observed}) / (1 + n)`` of :func:`agreement`.

    Uses :func:`wordlens.stats.permutation_pvalue` (never zero; ties within a relative
    1e-12 count as at least as extreme).

    Parameters
    ----------
    observed
        The dict returned by :func:`agreement`.
    null
        n_permutations × n_statistics from :func:`agreement_null` (possibly chunks
        concatenated along the first axis), columns in the order of ``observed``.

    Returns
    -------
    dict
        The same keys as ``observed``, their p-values.
    """
    from wordlens.stats import permutation_pvalue

    keys = list(observed)
    nul = np.asarray(null, dtype=np.float64)
    if nul.ndim != 2 or nul.shape[1] != len(keys):
        raise ValueError(
            f"null must be n_permutations × {len(keys)} (one column per statistic {keys}); got shape {nul.shape}"
        )
    p = permutation_pvalue(np.array([observed[k] for k in keys], dtype=np.float64), nul.T)
    return {k: float(v) for k, v in zip(keys, np.atleast_1d(p), strict=True)}


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------

#: Characters that force a Newick label to be quoted (underscores too: in an unquoted
#: label a Newick reader turns them into blanks).
_NEWICK_SPECIAL = set(" \t\r\n()[]':;,\"_")


def _newick_label(name: str) -> str:
    name = str(name)
    if name and not (set(name) & _NEWICK_SPECIAL):
        return name
    return "'" + name.replace("'", "''") + "'"


def _tree_nodes(Z: np.ndarray, names: Sequence[str] | None) -> tuple[int, list[str] | None]:
    Z = _check_linkage(Z, "Z")
    w = Z.shape[0] + 1
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != w:
            raise ValueError(f"names has {len(names)} entries but Z clusters {w} concepts")
    return w, names


def to_newick(Z: np.ndarray, names: Sequence[str]) -> str:
    """The hierarchy as a Newick string, ``"((a:1.0,b:1.0):1.5,c:2.5);"``.

    Leaves are at height 0; the branch above a node is its parent's height minus its
    own (``Z[:, 2]`` of the rows).  Children are written in the order of the linkage
    row (``Z[i, 0]`` first); the root has no branch length.  Lengths are written with
    Python's shortest round-trip ``repr``.  A name is single-quoted when it is empty
    or contains blanks, ``( ) [ ] ' : ; ,``, double quotes or underscores (which an
    unquoted Newick label would turn into blanks); a single quote inside is doubled.

    Parameters
    ----------
    Z
        Linkage matrix over w concepts.
    names
        The w leaf names.
    """
    w, names = _tree_nodes(Z, names)
    Z = np.asarray(Z, dtype=np.float64)
    height = np.concatenate([np.zeros(w), Z[:, 2]])
    text: dict[int, str] = {i: _newick_label(names[i]) for i in range(w)}
    for i, row in enumerate(Z):  # rows are in merge order: children come before parents
        node = w + i
        parts = []
        for child in (int(row[0]), int(row[1])):
            parts.append(f"{text.pop(child)}:{float(height[node] - height[child])!r}")
        text[node] = "(" + ",".join(parts) + ")"
    return text[2 * w - 2] + ";"


def to_json(Z: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """The hierarchy as nested JSON-ready dicts.

    Every node is ``{"id", "name", "height", "count", "children"}``: ``id`` is scipy's
    node number (leaves 0 … w − 1, row i's node w + i, root 2w − 2), ``name`` the
    concept name for a leaf and None for an internal node, ``height`` its merge
    height (0 for leaves), ``count`` its number of leaves, ``children`` the two child
    nodes in linkage-row order (empty for a leaf).  The root is returned.

    Built without recursion, but the nesting is as deep as the tree: ``json.dumps``
    (recursive) manages depths up to about 300 under Python's default recursion
    limit; average-linkage hierarchies of the papers' 838 concepts are 15–40 deep.
    :func:`to_newick` has no depth limit.
    """
    w, names = _tree_nodes(Z, names)
    Z = np.asarray(Z, dtype=np.float64)
    nodes: dict[int, dict[str, Any]] = {
        i: {"id": i, "name": names[i], "height": 0.0, "count": 1, "children": []} for i in range(w)
    }
    for i, row in enumerate(Z):
        kids = [nodes.pop(int(row[0])), nodes.pop(int(row[1]))]
        nodes[w + i] = {
            "id": w + i,
            "name": None,
            "height": float(row[2]),
            "count": kids[0]["count"] + kids[1]["count"],
            "children": kids,
        }
    return nodes[2 * w - 2]


# --------------------------------------------------------------------------------------
# Algorithm 2: filter-wise prediction tree
# --------------------------------------------------------------------------------------


def _masked_cos(dot: np.ndarray, uu: np.ndarray, vv: np.ndarray) -> np.ndarray:
    """cos from (vectorised) dot products and squared norms; 0 where a masked vector is zero."""
    den = np.sqrt(np.maximum(uu, 0.0) * np.maximum(vv, 0.0))
    ok = den > 0
    return np.where(ok, dot / np.where(ok, den, 1.0), 0.0).clip(-1.0, 1.0)


def _critical_filter(u: np.ndarray, v: np.ndarray, fu: set[int], fv: set[int]) -> tuple[int | None, float | None]:
    """Dai's critical filter of a merge of u and v (d × positions each) and its cosine ratio."""
    common = sorted(fu & fv)
    if not common:
        return None, None
    g = (u * v).sum(axis=1)  # per-filter dot products
    a = (u * u).sum(axis=1)
    b = (v * v).sum(axis=1)
    G, A, B = g[common].sum(), a[sorted(fu)].sum(), b[sorted(fv)].sum()
    base = float(_masked_cos(np.array(G), np.array(A), np.array(B)))
    idx = np.array(common)
    # Removing F from u.filters and from v.filters removes it from their intersection.
    without = _masked_cos(G - g[idx], A - a[idx], B - b[idx])
    score = without / base if base != 0.0 else without
    best = int(np.argmin(score))  # the first (lowest) filter on ties
    return int(idx[best]), float(score[best])


def prediction_tree(feature_maps: np.ndarray, min_images: int = 2) -> list[dict[str, Any]]:
    """Filter-wise prediction tree of one category (Dai's Algorithm 2).

    The c images' feature maps are the leaves, each with all d filters reachable.
    While some child of the root has more than one reachable filter (and more than
    one child remains), the two root children u, v with the smallest ½(1 − cos(u, v))
    (full flattened d × l × l vectors) are merged into a super-node s whose vector is
    the mean of u and v, whose critical filter is

        F = argmin over F in u.filters ∩ v.filters of
            cos(u ⊙ 1[u.filters ∖ {F}], v ⊙ 1[v.filters ∖ {F}]) / cos(u ⊙ 1[u.filters], v ⊙ 1[v.filters])

    (the mask zeroes all l × l positions of a filter), and whose reachable filters are
    ``(u.filters ∩ v.filters) ∖ {F}``.

    Interpretation of the pseudocode's gaps
        - Filters are numbered 0 … d − 1 (the paper: 1 … d).
        - The merge distance uses the full vectors (no mask), as the pseudocode's
          ``argmin ½(1 − cos(u, v))``; every pair of root children is a candidate,
          also one whose members have ≤ 1 reachable filter.  Ties go to the pair of
          smallest node ids (lexicographically).
        - The super-node vector is the unweighted mean ``(u + v) / 2`` of its two
          children (as ``s = mean(u, v)``), not the mean of all its images.
        - The pseudocode's argmin of the ratio is followed (the prose says "changed
          mostly"): for a positive denominator it is the filter whose removal
          lowers the masked cosine most — the filter that most supports the two
          nodes' similarity.  A cosine with a zero masked vector is taken as 0;
          when the denominator is 0 the numerator alone is minimised.  Ties go to
          the lowest filter index.  (An all-zero map likewise has cosine 0, i.e.
          distance ½, to every node.)
        - If ``u.filters ∩ v.filters`` is empty there is no critical filter
          (``critical_filter`` None) and s has no reachable filters.
        - The loop stops when every root child has ≤ 1 reachable filter, or when
          only one child remains (a further merge would not be between children).

    Parameters
    ----------
    feature_maps
        c × d × l × l (or c × d, or c × d × any spatial shape) activations of the c
        images of one category at one layer.
    min_images
        Fewest images accepted (≥ 2).

    Returns
    -------
    list of dict
        The nodes, indexed by ``id``: first the c leaves (id = image index), then the
        super-nodes in merge order, last the root R.  Each node has ``id``,
        ``kind`` (``"leaf"``, ``"merge"`` or ``"root"``), ``children`` (ids),
        ``images`` (sorted leaf indices below it), ``filters`` (sorted reachable
        filters; all d for leaves and R), ``critical_filter`` (int, or None for
        leaves, R, and merges with no common filter), ``ratio`` (the minimised cosine
        ratio, or None) and ``distance`` (½(1 − cos) of the merge, None for leaves and R).

    Raises
    ------
    ValueError
        If there are fewer than ``min_images`` images (the count is named), the
        array has fewer than 2 dimensions, or holds non-finite values.

    Notes
    -----
    Memory: the c images' vectors plus two (2c − 1) × (2c − 1) float64 matrices (Gram
    matrix and distances of the nodes: 108 MB for c = 1300, an ImageNet class).  Time:
    one c × c Gram product, then O(c + d × l²) per merge (typically).
    """
    if isinstance(min_images, bool) or not isinstance(min_images, (int, np.integer)) or min_images < 2:
        raise ValueError(f"min_images must be an integer ≥ 2; got {min_images!r}")
    X = np.asarray(feature_maps, dtype=np.float64)
    if X.ndim < 2:
        raise ValueError(f"feature_maps must be c × d (× l × l); got shape {X.shape}")
    c, d = X.shape[0], X.shape[1]
    if c < min_images:
        raise ValueError(f"prediction_tree needs at least {min_images} images of the category; got {c}")
    if d < 1:
        raise ValueError("feature_maps has no filters (d = 0)")
    if not np.isfinite(X).all():
        first = int(np.argwhere(~np.isfinite(X))[0, 0])
        raise ValueError(f"feature_maps holds non-finite values, first in image {first}")
    X = X.reshape(c, d, -1)

    vectors: dict[int, np.ndarray] = {i: X[i] for i in range(c)}
    nodes: list[dict[str, Any]] = [
        {"id": i, "kind": "leaf", "children": [], "images": [i], "filters": list(range(d)),
         "critical_filter": None, "ratio": None, "distance": None}
        for i in range(c)
    ]
    filters: dict[int, set[int]] = {i: set(range(d)) for i in range(c)}
    active = list(range(c))  # the root's children, by increasing id

    # Distances between root children come from their Gram matrix, indexed by node id:
    # s = (u + v)/2 gives s·p = (u·p + v·p)/2 and |s|² = (|u|² + 2u·v + |v|²)/4, so a
    # merge costs O(c), not O(c × d × l²).  dist[i, j] is kept for i < j only (+inf
    # elsewhere and for merged nodes), with each row's minimum and its column, so the
    # closest pair — the smallest ids on ties, lexicographically — is found in O(c).
    n_nodes = 2 * c - 1
    flat = X.reshape(c, -1)
    gram = np.zeros((n_nodes, n_nodes))
    gram[:c, :c] = flat @ flat.T
    dist = np.full((n_nodes, n_nodes), np.inf)

    def distance_to(p: np.ndarray, q: int) -> np.ndarray:
        den = np.sqrt(np.maximum(gram[p, p], 0.0) * max(gram[q, q], 0.0))
        ok = den > 0
        cos = np.where(ok, gram[p, q] / np.where(ok, den, 1.0), 0.0).clip(-1.0, 1.0)
        return 0.5 * (1.0 - cos)

    for j in range(1, c):
        dist[:j, j] = distance_to(np.arange(j), j)
    row_min = np.full(n_nodes, np.inf)
    row_arg = np.zeros(n_nodes, dtype=np.int64)

    def refresh(i: int) -> None:
        row_arg[i] = int(np.argmin(dist[i]))
        row_min[i] = dist[i, row_arg[i]]

    for i in range(c):
        refresh(i)

    while len(active) > 1 and any(len(filters[p]) > 1 for p in active):
        u = int(np.argmin(row_min))
        v = int(row_arg[u])
        distance = float(dist[u, v])
        F, ratio = _critical_filter(vectors[u], vectors[v], filters[u], filters[v])
        s = len(nodes)
        vectors[s] = (vectors[u] + vectors[v]) / 2.0
        filters[s] = (filters[u] & filters[v]) - ({F} if F is not None else set())
        nodes.append({
            "id": s, "kind": "merge", "children": [u, v],
            "images": sorted(nodes[u]["images"] + nodes[v]["images"]),
            "filters": sorted(filters[s]), "critical_filter": F, "ratio": ratio, "distance": distance,
        })
        active = [p for p in active if p not in (u, v)]
        idx = np.array(active, dtype=np.int64)
        gram[s, idx] = gram[idx, s] = (gram[u, idx] + gram[v, idx]) / 2.0
        gram[s, s] = (gram[u, u] + 2.0 * gram[u, v] + gram[v, v]) / 4.0
        for gone in (u, v):
            dist[gone, :] = np.inf
            dist[:, gone] = np.inf
            row_min[gone] = np.inf
            del vectors[gone]
        if idx.size:
            dist[idx, s] = distance_to(idx, s)  # every other child has a smaller id than s
            stale = idx[np.isin(row_arg[idx], (u, v))]
            for i in stale:
                refresh(int(i))
            better = idx[dist[idx, s] < row_min[idx]]  # strict: an equal, smaller column stays
            row_min[better] = dist[better, s]
            row_arg[better] = s
        active.append(s)
    nodes.append({
        "id": len(nodes), "kind": "root", "children": list(active), "images": list(range(c)),
        "filters": list(range(d)), "critical_filter": None, "ratio": None, "distance": None,
    })
    return nodes


def critical_filter_top_images(
    feature_maps: np.ndarray, tree: Sequence[Mapping[str, Any]], k: int
) -> dict[int, np.ndarray]:
    """For each critical filter of a prediction tree, the category's k images that activate it most.

    An image's activation of filter F is the mean of its feature map of F over the
    l × l positions; the images ranked are all c images of the category (those of
    ``feature_maps``), not only those below the node.

    Parameters
    ----------
    feature_maps
        The c × d (× l × l) activations given to :func:`prediction_tree`.
    tree
        Its output.
    k
        Number of images per filter, 1 ≤ k ≤ c.

    Returns
    -------
    dict
        ``{F: image indices}`` for every distinct critical filter F (sorted by F), the
        k indices by decreasing mean activation (ties: lower index first).
    """
    X = np.asarray(feature_maps, dtype=np.float64)
    if X.ndim < 2:
        raise ValueError(f"feature_maps must be c × d (× l × l); got shape {X.shape}")
    c, d = X.shape[0], X.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= c:
        raise ValueError(f"k must be an integer in 1..{c} (the number of images); got {k!r}")
    mean = X.reshape(c, d, -1).mean(axis=2)
    out: dict[int, np.ndarray] = {}
    for F in sorted({int(n["critical_filter"]) for n in tree if n.get("critical_filter") is not None}):
        if not 0 <= F < d:
            raise ValueError(f"critical filter {F} is outside 0..{d - 1}: the tree is not from these feature maps")
        out[F] = np.argsort(-mean[:, F], kind="stable")[:k]
    return out
