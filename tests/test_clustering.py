"""wordlens.clustering against literal transcriptions of Dai et al.'s pseudocode, brute
force, scikit-learn, numpy and hand-computed examples."""

from __future__ import annotations

import itertools
import math

import h5py
import numpy as np
import pytest
from scipy.cluster.hierarchy import cophenet, fcluster
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import fowlkes_mallows_score

from wordlens import clustering as cl

# ---------------------------------------------------------------------------------------
# Helpers and literal references
# ---------------------------------------------------------------------------------------


def random_distances(w: int, seed: int, dim: int = 7) -> np.ndarray:
    """Dai's ½(1 − cos) between random non-negative vectors, computed with explicit loops."""
    rng = np.random.default_rng(seed)
    V = rng.random((w, dim)) + 0.05
    D = np.zeros((w, w))
    for i in range(w):
        for j in range(w):
            if i != j:
                cos = float(V[i] @ V[j]) / (math.sqrt(float(V[i] @ V[i])) * math.sqrt(float(V[j] @ V[j])))
                D[i, j] = 0.5 * (1.0 - cos)
    return D


def dai_algorithm1_literal(D: np.ndarray) -> list[tuple[frozenset, frozenset, float]]:
    """Dai's Algorithm 1, transcribed line by line from the pseudocode.

    G holds weighted edges (non-parent-child) and parent-child edges.  While more than
    one node has no parent: take the shortest existing non-parent-child edge (c_u,
    c_v), add a supernode s with parent-child edges to c_u and c_v, remove (c_u, c_v);
    for every other node c_w (not c_u, c_v, s or their children) with an edge to c_u
    or c_v, add an edge (c_w, s) weighing the mean of |(c_w, c_m)| for c_m in {c_u,
    c_v} and remove (c_w, c_u), (c_w, c_v).

    Returns the merges as (leaves under c_u, leaves under c_v, weight).
    """
    w = D.shape[0]
    nodes = list(range(w))
    edges: dict[frozenset, float] = {}
    for c1 in range(w):
        for c2 in range(c1 + 1, w):
            edges[frozenset((c1, c2))] = float(D[c1, c2])
    parent: dict[int, int] = {}
    children: dict[int, list[int]] = {c: [] for c in nodes}
    leaves: dict[int, frozenset] = {c: frozenset([c]) for c in nodes}
    merges = []
    while sum(1 for n in nodes if n not in parent) > 1:
        (cu, cv), weight = min(((tuple(e), wt) for e, wt in edges.items()), key=lambda item: item[1])
        s = len(nodes)
        nodes.append(s)
        parent[cu] = s
        parent[cv] = s
        children[s] = [cu, cv]
        leaves[s] = leaves[cu] | leaves[cv]
        del edges[frozenset((cu, cv))]
        excluded = {cu, cv, s, *children[cu], *children[cv]}
        for cw in nodes:
            if cw in excluded:
                continue
            eu, ev = frozenset((cw, cu)), frozenset((cw, cv))
            if eu in edges or ev in edges:
                weights = [edges[e] for e in (eu, ev) if e in edges]
                edges[frozenset((cw, s))] = sum(weights) / len(weights)
                edges.pop(eu, None)
                edges.pop(ev, None)
        merges.append((leaves[cu], leaves[cv], weight))
    return merges


def linkage_merges(Z: np.ndarray) -> list[tuple[frozenset, frozenset, float]]:
    """The merges of a scipy linkage matrix as (leaves of child 0, leaves of child 1, height)."""
    w = Z.shape[0] + 1
    leaves = {i: frozenset([i]) for i in range(w)}
    out = []
    for i, (a, b, h, _) in enumerate(Z):
        leaves[w + i] = leaves[int(a)] | leaves[int(b)]
        out.append((leaves[int(a)], leaves[int(b)], float(h)))
    return out


def brute_force_mst(D: np.ndarray) -> tuple[float, set]:
    """Enumerate every set of n − 1 edges, keep the spanning trees, return the lightest."""
    n = D.shape[0]
    all_edges = list(itertools.combinations(range(n), 2))
    best = (math.inf, None)
    for subset in itertools.combinations(all_edges, n - 1):
        root = list(range(n))

        def find(x, root=root):
            while root[x] != x:
                x = root[x]
            return x

        acyclic = True
        for i, j in subset:
            ri, rj = find(i), find(j)
            if ri == rj:
                acyclic = False
                break
            root[ri] = rj
        if acyclic:
            total = sum(D[i, j] for i, j in subset)
            if total < best[0]:
                best = (total, set(subset))
    return best


def prim_literal(D: np.ndarray) -> set:
    """Prim's algorithm, written out: grow from node 0 by the lightest edge leaving the tree."""
    n = D.shape[0]
    in_tree = {0}
    edges = set()
    while len(in_tree) < n:
        i, j = min(((i, j) for i in in_tree for j in range(n) if j not in in_tree), key=lambda e: D[e])
        edges.add((min(i, j), max(i, j)))
        in_tree.add(j)
    return edges


def parse_newick(text: str):
    """A tiny Newick parser: returns (name, branch_length, children) tuples."""
    pos = 0

    def label():
        nonlocal pos
        if text[pos] == "'":
            pos += 1
            out = []
            while True:
                if text[pos] == "'":
                    if pos + 1 < len(text) and text[pos + 1] == "'":
                        out.append("'")
                        pos += 2
                        continue
                    pos += 1
                    return "".join(out)
                out.append(text[pos])
                pos += 1
        start = pos
        while text[pos] not in ",():;":
            pos += 1
        return text[start:pos]

    def node():
        nonlocal pos
        kids = []
        if text[pos] == "(":
            pos += 1
            kids.append(node())
            while text[pos] == ",":
                pos += 1
                kids.append(node())
            assert text[pos] == ")"
            pos += 1
        name = label()
        length = None
        if text[pos] == ":":
            pos += 1
            start = pos
            while text[pos] not in ",);":
                pos += 1
            length = float(text[start:pos])
        return (name, length, kids)

    tree = node()
    assert text[pos:] == ";"
    return tree


def newick_cophenetic(tree, names: list[str]) -> np.ndarray:
    """Cophenetic distances of a parsed ultrametric Newick tree (heights from branch lengths)."""
    index = {n: i for i, n in enumerate(names)}
    w = len(names)
    C = np.zeros((w, w))

    def visit(t):  # returns (height, leaf indices)
        name, _, kids = t
        if not kids:
            return 0.0, [index[name]]
        parts = [visit(k) for k in kids]
        heights = [h + k[1] for (h, _), k in zip(parts, kids)]
        assert np.allclose(heights, heights[0])
        for (_, a), (_, b) in itertools.combinations(parts, 2):
            for i in a:
                for j in b:
                    C[i, j] = C[j, i] = heights[0]
        return heights[0], [i for _, leaves in parts for i in leaves]

    visit(tree)
    return C


def fm_literal(a: np.ndarray, b: np.ndarray) -> float:
    """Fowlkes–Mallows by enumerating every pair of items."""
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        same_a, same_b = a[i] == a[j], b[i] == b[j]
        tp += same_a and same_b
        fp += same_a and not same_b
        fn += same_b and not same_a
    return 0.0 if tp == 0 else tp / math.sqrt((tp + fp) * (tp + fn))


class SpyDataset:
    """An array wrapper that records every key it is read with."""

    def __init__(self, data: np.ndarray, chunks=None):
        self.data, self.shape, self.chunks, self.keys = data, data.shape, chunks, []

    def __getitem__(self, key):
        self.keys.append(key)
        return self.data[key]


# ---------------------------------------------------------------------------------------
# Representative vectors
# ---------------------------------------------------------------------------------------

LAYER_SHAPE = (3, 2, 2)
CONCEPT_ROWS = [np.array([0, 1, 2]), np.array([5, 3]), np.array([7]), np.array([8, 9, 11])]


@pytest.fixture
def activation_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 12)).astype(np.float32)
    path = tmp_path / "layer.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("activations", data=X, chunks=(4, 4))
        f.attrs["layer_shape"] = list(LAYER_SHAPE)
    return path, X


@pytest.mark.parametrize("block", [1, 5, 7, 65536])
def test_representative_vectors_flat_match_numpy_mean(activation_file, block):
    path, X = activation_file
    expected = np.stack([X[r].astype(np.float64).mean(axis=0) for r in CONCEPT_ROWS])
    with h5py.File(path, "r") as f:
        got = cl.representative_vectors(f["activations"], CONCEPT_ROWS, block_features=block)
    assert got.shape == (4, 12) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [1, 3, 5, 12])
def test_representative_vectors_channel_mean_match_numpy(activation_file, block):
    path, X = activation_file
    C, H, W = LAYER_SHAPE
    expected = np.stack([X[r].astype(np.float64).reshape(-1, C, H, W).mean(axis=(0, 2, 3)) for r in CONCEPT_ROWS])
    with h5py.File(path, "r") as f:  # shape from the file's layer_shape attribute
        got = cl.representative_vectors(f["activations"], CONCEPT_ROWS, channel_mean=True, block_features=block)
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # The same with an explicit shape and a plain array.
    got2 = cl.representative_vectors(X, CONCEPT_ROWS, shape=LAYER_SHAPE, channel_mean=True, block_features=block)
    np.testing.assert_allclose(got2, expected, rtol=1e-12, atol=1e-12)


def test_representative_vectors_read_in_feature_blocks():
    X = np.arange(12 * 12, dtype=np.float64).reshape(12, 12)
    spy = SpyDataset(X)
    cl.representative_vectors(spy, CONCEPT_ROWS, block_features=5)
    union = np.array([0, 1, 2, 3, 5, 7, 8, 9, 11])
    assert [k[1] for k in spy.keys] == [slice(0, 5), slice(5, 10), slice(10, 12)]
    for rows, _ in spy.keys:  # only the concepts' rows, sorted and distinct
        np.testing.assert_array_equal(rows, union)
    # Contiguous rows are read as a slice; a chunked dataset's block is a whole number of chunks.
    spy = SpyDataset(X, chunks=(2, 4))
    cl.representative_vectors(spy, [[0, 1], [2], [3, 4]], block_features=6)
    assert spy.keys == [(slice(0, 5), slice(0, 4)), (slice(0, 5), slice(4, 8)), (slice(0, 5), slice(8, 12))]


def test_representative_vectors_masks_slices_and_duplicates():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 4))
    mask = np.array([True, False, True, False, False, False])
    got = cl.representative_vectors(X, [mask, slice(3, 6), [1, 1, 4]])
    expected = np.stack([X[[0, 2]].mean(axis=0), X[3:6].mean(axis=0), (2 * X[1] + X[4]) / 3])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_representative_vectors_errors(activation_file):
    path, X = activation_file
    with pytest.raises(ValueError, match=r"concept 1 \('dog'\) has no image rows"):
        cl.representative_vectors(X, [[0], [], [2]], names=["cat", "dog", "car"])
    with pytest.raises(ValueError, match=r"concept 2 has no image rows"):
        cl.representative_vectors(X, [[0], [1], np.array([], dtype=int)])
    with pytest.raises(ValueError, match="at least 3 concepts to cluster; got 2"):
        cl.representative_vectors(X, [[0], [1]])
    with pytest.raises(ValueError, match=r"layer shape \(3, 2, 3\) has 18 features but the activations have 12"):
        cl.representative_vectors(X, CONCEPT_ROWS, shape=(3, 2, 3))
    with pytest.raises(ValueError, match="channel_mean=True needs the layer shape"):
        cl.representative_vectors(X, CONCEPT_ROWS, channel_mean=True)
    with pytest.raises(ValueError, match=r"row index 12 is outside 0..11"):
        cl.representative_vectors(X, [[0], [1], [12]])
    with pytest.raises(ValueError, match="block_features must be a positive integer; got 0"):
        cl.representative_vectors(X, CONCEPT_ROWS, block_features=0)
    bad = X.copy()
    bad[7, 5] = np.nan
    with pytest.raises(ValueError, match=r"concept 2: the mean activation of feature 5 is not finite"):
        cl.representative_vectors(bad, CONCEPT_ROWS)
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match="has 18 features"):
        cl.representative_vectors(f["activations"], CONCEPT_ROWS, shape=(18,))


def test_add_noise_category():
    V = np.eye(3)
    out, names = cl.add_noise_category(V, ["a", "b", "c"], np.array([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
    assert names == ["a", "b", "c", "noise"]
    with pytest.raises(ValueError, match="already named 'noise'"):
        cl.add_noise_category(V, ["a", "noise", "c"], np.ones(3))
    with pytest.raises(ValueError, match="noise vector has 2 features but the representative vectors have 3"):
        cl.add_noise_category(V, ["a", "b", "c"], np.ones(2))


# ---------------------------------------------------------------------------------------
# Distances, Algorithm 1, MST
# ---------------------------------------------------------------------------------------


def test_category_distances_cosine_and_correlation():
    V = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0], [-1.0, 0.0, 0.0]])
    D = cl.category_distances(V)
    # ½(1 − cos): cos(v0, v1) = 1/√2, cos(v0, v2) = 0, cos(v0, v3) = −1.
    assert D[0, 1] == pytest.approx(0.5 * (1 - 1 / math.sqrt(2)))
    assert D[0, 2] == pytest.approx(0.5)
    assert D[0, 3] == pytest.approx(1.0)
    assert D[1, 2] == pytest.approx(0.5)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    np.testing.assert_array_equal(D, D.T)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(5, 9))
    expected = np.array([[1 - np.corrcoef(W[i], W[j])[0, 1] if i != j else 0.0 for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(cl.category_distances(W, "correlation"), expected, atol=1e-12)
    # scipy's "cosine" distance is 1 − cos.
    np.testing.assert_allclose(cl.category_distances(W), 0.5 * squareform(pdist(W, "cosine")), atol=1e-12)


def test_category_distances_errors():
    V = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 1.0]])
    with pytest.raises(ValueError, match=r"1 all-zero representative vector\(s\) \(concept 1 \('b'\)\)"):
        cl.category_distances(V, names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"constant representative vector\(s\) \(concept 0\)"):
        cl.category_distances(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 0.0]]), "correlation")
    with pytest.raises(ValueError, match="metric 'euclid' is not one of"):
        cl.category_distances(V, "euclid")


@pytest.mark.parametrize("seed", range(5))
def test_dai_hierarchy_equals_literal_algorithm1(seed):
    D = random_distances(9 + seed, seed)
    literal = dai_algorithm1_literal(D)
    Z = cl.dai_hierarchy(D)  # method="weighted"
    ours = linkage_merges(Z)
    assert len(ours) == len(literal) == D.shape[0] - 1
    for (a1, b1, h1), (a2, b2, h2) in zip(ours, literal):
        assert {a1, b1} == {a2, b2}  # the same two clusters merge at every step
        assert h1 == pytest.approx(h2, rel=1e-12, abs=1e-15)


def test_dai_hierarchy_average_differs_from_weighted_and_validates():
    D = random_distances(10, 11)
    Za, Zw = cl.dai_hierarchy(D, "average"), cl.dai_hierarchy(D, "weighted")
    assert not np.allclose(Za[:, 2], Zw[:, 2])
    # UPGMA by hand on three points: d(ab) = 1; d({a,b}, c) = (4 + 6) / 2 = 5.
    Z = cl.dai_hierarchy(np.array([[0, 1, 4], [1, 0, 6], [4, 6, 0.0]]), "average")
    np.testing.assert_allclose(Z[:, 2], [1.0, 5.0])
    with pytest.raises(ValueError, match="method 'single' is not one of"):
        cl.dai_hierarchy(D, "single")
    asym = D.copy()
    asym[0, 1] += 0.1
    with pytest.raises(ValueError, match=r"D is not symmetric: \[0, 1\]"):
        cl.dai_hierarchy(asym)
    with pytest.raises(ValueError, match="square distance matrix"):
        cl.dai_hierarchy(D[:3])


@pytest.mark.parametrize("seed", range(4))
def test_minimum_spanning_tree_matches_brute_force_and_prim(seed):
    D = random_distances(6, 100 + seed)
    if seed % 2:
        D[1, 4] = D[4, 1] = 0.0  # a zero distance is an edge, not a missing edge
    if seed == 3:
        D[2, 5] = D[5, 2] = 1e-12  # below the 1e-8 that csgraph would drop
    total, best = brute_force_mst(D)
    edges = cl.minimum_spanning_tree(D)
    assert len(edges) == 5
    assert {(i, j) for i, j, _ in edges} == best == prim_literal(D)
    assert sum(wt for _, _, wt in edges) == pytest.approx(total)
    for i, j, wt in edges:
        assert i < j and wt == D[i, j]
    assert [wt for _, _, wt in edges] == sorted(wt for _, _, wt in edges)
    if seed % 2:
        assert (1, 4, 0.0) in edges
    if seed == 3:
        assert (2, 5, 1e-12) in edges


def test_minimum_spanning_tree_all_zero_distances():
    edges = cl.minimum_spanning_tree(np.zeros((4, 4)))
    assert len(edges) == 3 and all(wt == 0.0 for _, _, wt in edges)
    assert brute_force_mst(np.zeros((4, 4)))[0] == 0.0


# ---------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------

# Four concepts a, b, c, d.  The layer: d(ab) = 1, d(cd) = 2, d(ac) = 4, d(ad) = 6,
# d(bc) = 5, d(bd) = 7.  WPGMA by hand: ab at 1; d(ab, c) = (4 + 5)/2 = 4.5,
# d(ab, d) = (6 + 7)/2 = 6.5; cd at 2; d(ab, cd) = (4.5 + 6.5)/2 = 5.5.
HAND_D = np.array([[0, 1, 4, 6], [1, 0, 5, 7], [4, 5, 0, 2], [6, 7, 2, 0.0]])
# The reference, written as a linkage: ((a, c) at 1, b) at 3, d) at 4.
HAND_REF = np.array([[0, 2, 1.0, 2], [1, 4, 3.0, 3], [3, 5, 4.0, 4]])


def test_cophenetic_correlation_hand_example():
    Z = cl.dai_hierarchy(HAND_D)
    np.testing.assert_allclose(Z[:, 2], [1.0, 2.0, 5.5])
    # Condensed order ab, ac, ad, bc, bd, cd.  Layer x = [1, 5.5, 5.5, 5.5, 5.5, 2]
    # (mean 25/6), reference y = [3, 1, 4, 3, 4, 4] (mean 19/6).  Times 6, the
    # deviations are X = [−19, 8, 8, 8, 8, −13], Y = [−1, −13, 5, −1, 5, 5]:
    # ΣXY = 19 − 104 + 40 − 8 + 40 − 65 = −78, ΣX² = 786, ΣY² = 246.
    expected = -78 / math.sqrt(786 * 246)
    assert cl.cophenetic_correlation(Z, HAND_REF) == pytest.approx(expected, rel=1e-12)
    assert cl.agreement(Z, HAND_REF, [2])["cophenetic"] == pytest.approx(expected, rel=1e-12)
    # Against the raw distances: scipy's cophenetic correlation coefficient.
    assert cl.cophenetic_correlation(Z, HAND_D, reference_kind="distance") == pytest.approx(
        cophenet(Z, squareform(HAND_D))[0], rel=1e-12
    )
    # Cut into 2: layer {a, b}, {c, d}; reference {a, b, c}, {d}.  Pairs together:
    # layer ab, cd; reference ab, ac, bc; both: ab.  FM = 1 / sqrt(2 · 3).
    assert cl.fowlkes_mallows(Z, HAND_REF, 2) == pytest.approx(1 / math.sqrt(6))


def test_cophenetic_correlation_errors():
    Z = cl.dai_hierarchy(HAND_D)
    flat = np.array([[0, 1, 1.0, 2], [2, 4, 1.0, 3], [3, 5, 1.0, 4]])
    with pytest.raises(ValueError, match="cophenetic distances are all equal"):
        cl.cophenetic_correlation(Z, flat)
    with pytest.raises(ValueError, match="cluster different numbers of concepts: 4 and 5"):
        cl.cophenetic_correlation(Z, cl.dai_hierarchy(random_distances(5, 0)))
    with pytest.raises(ValueError, match="reference_kind 'tree'"):
        cl.cophenetic_correlation(Z, HAND_REF, reference_kind="tree")


@pytest.mark.parametrize("seed", range(3))
def test_fowlkes_mallows_matches_sklearn_and_pair_enumeration(seed):
    Za = cl.dai_hierarchy(random_distances(30, seed))
    Zb = cl.dai_hierarchy(random_distances(30, seed + 50), "average")
    for k in (1, 2, 3, 5, 8, 15, 29, 30):
        la = fcluster(Za, k, "maxclust")
        lb = fcluster(Zb, k, "maxclust")
        got = cl.fowlkes_mallows(Za, Zb, k)
        assert got == pytest.approx(fowlkes_mallows_score(la, lb), abs=1e-12)
        assert got == pytest.approx(fm_literal(la, lb), abs=1e-12)
    with pytest.raises(ValueError, match="k = 31 clusters; k must be in 1..30"):
        cl.fowlkes_mallows(Za, Zb, 31)


def test_agreement_keys_and_errors():
    Za = cl.dai_hierarchy(random_distances(12, 1))
    Zb = cl.dai_hierarchy(random_distances(12, 2))
    out = cl.agreement(Za, Zb, [4, 2])
    assert list(out) == cl.agreement_keys([4, 2]) == ["cophenetic", "fowlkes_mallows_k4", "fowlkes_mallows_k2"]
    with pytest.raises(ValueError, match="cuts must be distinct"):
        cl.agreement(Za, Zb, [2, 2])
    with pytest.raises(ValueError, match="cuts must be a sequence"):
        cl.agreement(Za, Zb, 3)
    with pytest.raises(ValueError, match="not a valid linkage"):
        cl.agreement(Za[::-1], Zb, [2])


def test_agreement_null_chunks_are_exact():
    Za = cl.dai_hierarchy(random_distances(25, 3))
    Zb = cl.dai_hierarchy(random_distances(25, 4))
    cuts = [2, 5, 9]
    full = cl.agreement_null(Za, Zb, cuts, seed=7, start=0, stop=100)
    assert full.shape == (100, 4)
    parts = np.concatenate([cl.agreement_null(Za, Zb, cuts, 7, 0, 40), cl.agreement_null(Za, Zb, cuts, 7, 40, 100)])
    np.testing.assert_array_equal(full, parts)
    assert cl.agreement_null(Za, Zb, cuts, 7, 5, 5).shape == (0, 4)
    assert not np.array_equal(full, cl.agreement_null(Za, Zb, cuts, 8, 0, 100))
    with pytest.raises(ValueError, match="stop must be ≥ start; got start = 5, stop = 4"):
        cl.agreement_null(Za, Zb, cuts, 7, 5, 4)
    with pytest.raises(ValueError, match="seed must be ≥ 0; got -1"):
        cl.agreement_null(Za, Zb, cuts, -1, 0, 4)


@pytest.mark.parametrize("method", ["weighted", "average"])
def test_agreement_null_equals_literal_reclustering(method):
    w, seed, cuts = 20, 5, [2, 3, 6]
    D = random_distances(w, 21)
    Z_layer = cl.dai_hierarchy(D, method)
    Z_ref = cl.dai_hierarchy(random_distances(w, 22), method)
    null = cl.agreement_null(Z_layer, Z_ref, cuts, seed, 3, 11)
    for row, p in enumerate(range(3, 11)):
        perm = np.random.default_rng([seed, p]).permutation(w)
        Z_perm = cl.dai_hierarchy(D[perm][:, perm], method)  # re-cluster the relabelled layer
        expected = [np.corrcoef(cophenet(Z_perm), cophenet(Z_ref))[0, 1]]
        expected += [fowlkes_mallows_score(fcluster(Z_perm, k, "maxclust"), fcluster(Z_ref, k, "maxclust"))
                     for k in cuts]
        np.testing.assert_allclose(null[row], expected, rtol=1e-10, atol=1e-12)


def test_agreement_pvalues():
    Za = cl.dai_hierarchy(random_distances(15, 8))
    observed = cl.agreement(Za, Za, [3])  # a hierarchy agrees perfectly with itself
    assert observed == {"cophenetic": pytest.approx(1.0), "fowlkes_mallows_k3": pytest.approx(1.0)}
    null = cl.agreement_null(Za, Za, [3], 0, 0, 19)
    p = cl.agreement_pvalues(observed, null)
    b = (null >= np.array([observed["cophenetic"], observed["fowlkes_mallows_k3"]]) - 1e-12).sum(axis=0)
    assert p == {"cophenetic": pytest.approx((1 + b[0]) / 20), "fowlkes_mallows_k3": pytest.approx((1 + b[1]) / 20)}
    assert p["cophenetic"] == pytest.approx(1 / 20)
    with pytest.raises(ValueError, match="one column per statistic"):
        cl.agreement_pvalues(observed, null[:, :1])


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------


def test_to_newick_hand_written():
    Z = np.array([[0, 1, 1.0, 2], [2, 3, 2.5, 3]])
    # Children in linkage-row order: row 1 joins leaf 2 (c) and node 3 (a, b).
    assert cl.to_newick(Z, ["a", "b", "c"]) == "(c:2.5,(a:1.0,b:1.0):1.5);"
    names = ["golden_retriever", "d's", "x,y (z): w"]
    assert cl.to_newick(Z, names) == "('x,y (z): w':2.5,('golden_retriever':1.0,'d''s':1.0):1.5);"
    Z4 = np.array([[2, 3, 0.5, 2], [0, 1, 1.0, 2], [4, 5, 2.0, 4]])
    assert cl.to_newick(Z4, ["a", "b", "c", "d"]) == "((c:0.5,d:0.5):1.5,(a:1.0,b:1.0):1.0);"
    with pytest.raises(ValueError, match="names has 2 entries but Z clusters 3 concepts"):
        cl.to_newick(Z, ["a", "b"])


def test_to_newick_round_trip():
    w = 12
    Z = cl.dai_hierarchy(random_distances(w, 31))
    names = [f"c{i}" for i in range(w - 4)] + ["two words", "it's", "a:b", 'say "hi"']
    tree = parse_newick(cl.to_newick(Z, names))
    C = newick_cophenetic(tree, names)
    np.testing.assert_allclose(C, squareform(cophenet(Z)), rtol=1e-12, atol=1e-15)
    leaves = []

    def collect(t):
        if not t[2]:
            leaves.append(t[0])
        for k in t[2]:
            collect(k)

    collect(tree)
    assert sorted(leaves) == sorted(names)


def test_to_newick_deep_tree():
    w = 2000  # a caterpillar 1999 levels deep: no recursion limit
    Z = np.array([[i if i == 0 else w + i - 1, i + 1, i + 1.0, i + 2] for i in range(w - 1)], dtype=float)
    Z[0, :2] = [0, 1]
    text = cl.to_newick(Z, [f"n{i}" for i in range(w)])
    assert text.startswith("(" * (w - 1) + "n0:1.0,n1:1.0):1.0,n2:2.0):1.0,") and text.endswith(f",n{w - 1}:{w - 1.0!r});")


def test_to_json():
    Z = np.array([[0, 1, 1.0, 2], [2, 3, 2.5, 3]])
    assert cl.to_json(Z, ["a", "b", "c"]) == {
        "id": 4, "name": None, "height": 2.5, "count": 3, "children": [
            {"id": 2, "name": "c", "height": 0.0, "count": 1, "children": []},
            {"id": 3, "name": None, "height": 1.0, "count": 2, "children": [
                {"id": 0, "name": "a", "height": 0.0, "count": 1, "children": []},
                {"id": 1, "name": "b", "height": 0.0, "count": 1, "children": []},
            ]},
        ],
    }


# ---------------------------------------------------------------------------------------
# Algorithm 2: prediction tree
# ---------------------------------------------------------------------------------------


def hand_feature_maps() -> np.ndarray:
    """3 images × 3 filters × 2 × 2.  Images 0 and 1 share a strong filter 0 and filter 1;
    their filter 2 fires at different positions.  Image 2 lacks filter 0; its filter 1
    matches theirs, its filter 2 fires at a fourth position."""
    X = np.zeros((3, 3, 2, 2))
    X[0, 0, 0, 0] = X[1, 0, 0, 0] = 4.0
    X[0, 1, 0, 0] = X[1, 1, 0, 0] = 1.0
    X[0, 2, 0, 1] = 1.0
    X[1, 2, 1, 0] = 1.0
    X[2, 1, 0, 0] = 2.0
    X[2, 2, 1, 1] = 1.0
    return X


def test_prediction_tree_hand_example():
    nodes = cl.prediction_tree(hand_feature_maps())
    assert [n["id"] for n in nodes] == [0, 1, 2, 3, 4, 5]
    assert [n["kind"] for n in nodes] == ["leaf"] * 3 + ["merge", "merge", "root"]
    # Merge 1: |x0|² = |x1|² = 16 + 1 + 1 = 18, x0·x1 = 17 (x0·x2 = x1·x2 = 2, much less
    # similar).  Masked cosines with one filter F removed: F = 0 → 1/2, F = 1 → 16/17,
    # F = 2 → 1; the base is 17/18, so the ratios are 9/17, 288/289, 18/17: F = 0.
    m1 = nodes[3]
    assert m1["children"] == [0, 1] and m1["images"] == [0, 1]
    assert m1["critical_filter"] == 0 and m1["filters"] == [1, 2]
    assert m1["distance"] == pytest.approx(0.5 * (1 - 17 / 18))
    assert m1["ratio"] == pytest.approx(9 / 17)
    # Merge 2: s = (x0 + x1)/2 (filters {1, 2}) with x2 (all filters): s·x2 = 2,
    # |s|² = 17.5, |x2|² = 5.  Removing filter 1 leaves filter 2, where s and x2 are
    # orthogonal (cos 0); removing filter 2 leaves filter 1, where they are parallel
    # (cos 1).  So F = 1, and the only reachable filter left is 2.
    m2 = nodes[4]
    assert m2["children"] == [2, 3] and m2["images"] == [0, 1, 2]
    assert m2["critical_filter"] == 1 and m2["filters"] == [2]
    assert m2["distance"] == pytest.approx(0.5 * (1 - 2 / math.sqrt(17.5 * 5)))
    assert m2["ratio"] == pytest.approx(0.0)
    root = nodes[5]
    assert root["children"] == [4] and root["filters"] == [0, 1, 2] and root["critical_filter"] is None
    # Top images of each critical filter by mean activation over the 2 × 2 positions:
    # filter 0: 1, 1, 0; filter 1: 0.25, 0.25, 0.5.
    top = cl.critical_filter_top_images(hand_feature_maps(), nodes, 2)
    assert list(top) == [0, 1]
    np.testing.assert_array_equal(top[0], [0, 1])
    np.testing.assert_array_equal(top[1], [2, 0])


def prediction_tree_literal(X: np.ndarray):
    """Algorithm 2 transcribed: explicit masks 1_d^M repeated over the l × l positions."""
    c, d = X.shape[:2]
    V = {i: X[i].astype(float) for i in range(c)}
    filt = {i: set(range(d)) for i in range(c)}
    children_of_R = list(range(c))
    merges = []

    def cos(a, b):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return 0.0 if na == 0 or nb == 0 else float((a * b).sum() / (na * nb))

    def mask(M):
        m = np.zeros(X.shape[1:])
        for i in M:
            m[i] = 1.0
        return m

    nxt = c
    while len(children_of_R) > 1 and any(len(filt[p]) > 1 for p in children_of_R):
        u, v = min(itertools.combinations(sorted(children_of_R), 2), key=lambda e: 0.5 * (1 - cos(V[e[0]], V[e[1]])))
        s = nxt
        nxt += 1
        V[s] = (V[u] + V[v]) / 2
        children_of_R = [p for p in children_of_R if p not in (u, v)] + [s]
        base = cos(V[u] * mask(filt[u]), V[v] * mask(filt[v]))
        ratios = {F: cos(V[u] * mask(filt[u] - {F}), V[v] * mask(filt[v] - {F})) / base
                  for F in sorted(filt[u] & filt[v])}
        # No common filter: no critical filter (the module's documented reading).
        F = min(ratios, key=lambda f: (ratios[f], f)) if ratios else None
        filt[s] = (filt[u] & filt[v]) - {F}
        merges.append(((u, v), F, sorted(filt[s])))
    return merges


@pytest.mark.parametrize(("seed", "shape"), [(0, (9, 6, 3, 3)), (1, (9, 6, 3, 3)), (2, (9, 6, 3, 3)),
                                             (3, (16, 10, 2, 2)), (4, (25, 4, 3, 3))])
def test_prediction_tree_matches_literal_transcription(seed, shape):
    rng = np.random.default_rng(seed)
    X = np.maximum(0.0, rng.normal(size=shape))  # ReLU-like maps
    nodes = cl.prediction_tree(X)
    merges = [(tuple(n["children"]), n["critical_filter"], n["filters"]) for n in nodes if n["kind"] == "merge"]
    assert merges == prediction_tree_literal(X)
    root = nodes[-1]
    # Stopping rule: every child of the root has at most one filter, or only one is left.
    kids = [nodes[i] for i in root["children"]]
    assert len(kids) == 1 or all(len(k["filters"]) <= 1 for k in kids)


def test_prediction_tree_2d_input_and_errors():
    X = np.array([[1.0, 0.0, 2.0], [1.0, 0.1, 2.0], [0.0, 3.0, 0.0], [0.1, 3.0, 0.2]])
    nodes = cl.prediction_tree(X)
    assert [n["children"] for n in nodes if n["kind"] == "merge"][:2] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="at least 2 images of the category; got 1"):
        cl.prediction_tree(X[:1])
    with pytest.raises(ValueError, match="at least 5 images of the category; got 4"):
        cl.prediction_tree(X, min_images=5)
    with pytest.raises(ValueError, match="k must be an integer in 1..4"):
        cl.critical_filter_top_images(X, nodes, 5)
    one_filter = cl.prediction_tree(np.ones((3, 1, 2, 2)))  # nothing to merge: d = 1
    assert [n["kind"] for n in one_filter] == ["leaf"] * 3 + ["root"]


@pytest.mark.parametrize("metric", ["cosine", "correlation"])
def test_representative_distances_in_slabs_equal_the_literal_distances_of_the_means(tmp_path, metric):
    """Distances from the slab-wise Gram matrix == numpy means of each concept's rows, then
    ½(1 − cos) or 1 − corrcoef, with slabs that do not divide the width."""
    import h5py

    rng = np.random.default_rng(7)
    acts = rng.normal(size=(12, 2 * 5 * 7)).astype(np.float32) + 0.3
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("activations", data=acts, chunks=(4, 8))
        f.attrs["layer_shape"] = [2, 5, 7]
    rows = [np.array([0, 5, 9]), np.array([1, 2]), np.array([3, 11, 4]), np.array([6, 7, 8, 10])]
    means = np.stack([acts[r].astype(np.float64).mean(axis=0) for r in rows])
    if metric == "cosine":
        u = means / np.linalg.norm(means, axis=1, keepdims=True)
        expected = 0.5 * (1 - u @ u.T)
    else:
        expected = 1 - np.corrcoef(means)
    np.fill_diagonal(expected, 0)
    with h5py.File(path, "r") as f:
        for slab in (1, 13, 64, 1000):
            got = cl.representative_distances(f["activations"], rows, metric, slab_features=slab, block_features=5)
            np.testing.assert_allclose(got, expected, atol=1e-12)
        mean_c = means.reshape(4, 2, 35).mean(axis=2)
        got = cl.representative_distances(f["activations"], rows, metric, channel_mean=True)
        exp_c = (0.5 * (1 - (mean_c / np.linalg.norm(mean_c, axis=1, keepdims=True))
                        @ (mean_c / np.linalg.norm(mean_c, axis=1, keepdims=True)).T)
                 if metric == "cosine" else 1 - np.corrcoef(mean_c))
        np.fill_diagonal(exp_c, 0)
        np.testing.assert_allclose(got, exp_c, atol=1e-12)


def test_representative_distances_read_every_feature_once_in_blocks():
    class Spy:
        def __init__(self, a):
            self.a, self.shape, self.chunks, self.widths = a, a.shape, None, []

        def __getitem__(self, key):
            rows, cols = key
            self.widths.append(cols.stop - cols.start)
            return self.a[rows, cols]

    rng = np.random.default_rng(0)
    spy = Spy(rng.random((6, 1000)))
    D = cl.representative_distances(spy, [[0, 1], [2, 3], [4, 5]], slab_features=300, block_features=100)
    assert D.shape == (3, 3) and max(spy.widths) <= 100 and sum(spy.widths) == 1000  # every feature read once
    with pytest.raises(ValueError, match="layer shape"):
        cl.representative_distances(spy, [[0], [1], [2]], shape=(3, 7))
