"""wordlens.taxonomy_figures: every figure writes valid, non-empty files for 10 and 120
concepts; the dendrogram paginates above max_leaves with every name somewhere; the MST's
DOT source has w nodes and w − 1 edges; the agreement curve has one line per (reference,
statistic) and one filled marker per significant layer; inputs that do not fit raise
ValueError naming the argument."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import linkage
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from wordlens import taxonomy_figures as T

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is installed by `make test` (root)")


def _png(path, min_side=100):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1_000
    img = imread(path)
    assert min(img.shape[:2]) >= min_side and img[..., :3].std() > 0.01
    assert not list(path.parent.glob(f".{path.name}.tmp-*"))  # written atomically, nothing left behind


def _svg_text(path) -> str:
    text = path.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in text
    return text


def _names(w):
    return [f"concept{i:03d}" for i in range(w - 1)] + ["noise"]


def _distances(w, seed=0):
    rng = np.random.default_rng(seed)
    V = rng.normal(size=(6, 32))[rng.integers(0, 6, w)] + 0.6 * rng.normal(size=(w, 32))
    return squareform(pdist(V, "cosine")) / 2


def _linkage(w, seed=0):
    return linkage(squareform(_distances(w, seed), checks=False), "weighted")


def _mst(w, seed=0):
    D = _distances(w, seed)
    M = minimum_spanning_tree(D + 1e-12).tocoo()
    return [(int(i), int(j), float(D[i, j])) for i, j in zip(M.row, M.col)]


# --------------------------------------------------------------------------------------
# Dendrogram
# --------------------------------------------------------------------------------------


def test_dendrogram_small_one_page_all_names(tmp_path):
    names = _names(10)
    outs = [tmp_path / "d.png", tmp_path / "d.svg", tmp_path / "d.pdf"]
    written = T.dendrogram_figure(_linkage(10), names, outs, title="layer4")
    assert set(written) == set(outs)
    _png(outs[0])
    svg = _svg_text(outs[1])
    assert all(n in svg for n in names)
    assert outs[2].read_bytes()[:5] == b"%PDF-"
    pages = T.dendrogram_pages(_linkage(10), names)
    assert [p["kind"] for p in pages] == ["full"] and sorted(pages[0]["names"]) == sorted(names)


def test_dendrogram_120_paginates_every_name_once(tmp_path):
    Z, names = _linkage(120), _names(120)
    pages = T.dendrogram_pages(Z, names, max_leaves=60)
    assert pages[0]["kind"] == "overview" and len(pages) >= 3
    assert all(p["kind"] == "subtrees" and len(p["names"]) <= 60 for p in pages[1:])
    shown = [n for p in pages for n in p["names"]]
    assert sorted(shown) == sorted(names)  # every concept exactly once
    codes = [g for g in pages[0]["groups"] if g is not None]
    assert codes == [g for p in pages[1:] for g in p["groups"]]  # subtree pages follow the overview's order

    outs = [tmp_path / "tree.png", tmp_path / "tree.svg", tmp_path / "tree.pdf"]
    written = T.dendrogram_figure(Z, names, outs, max_leaves=60)
    k = len(pages)
    for suffix in ("png", "svg"):
        expected = [tmp_path / f"tree.{suffix}"] + [tmp_path / f"tree.page{i}.{suffix}" for i in range(2, k + 1)]
        assert all(p in written and p.exists() for p in expected)
    for p in tmp_path.glob("tree*.png"):
        _png(p)
    svg = " ".join(_svg_text(p) for p in tmp_path.glob("tree*.svg"))
    assert all(n in svg for n in names)
    assert all(f"{c} · " in svg for c in codes)  # the overview's count labels
    pdf = outs[2].read_bytes()
    assert pdf[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page\b", pdf)) == k

    # a later, shorter figure at the same path removes the stale pages
    T.dendrogram_figure(_linkage(10), _names(10), [tmp_path / "tree.png"])
    assert not list(tmp_path.glob("tree.page*.png"))
    assert list(tmp_path.glob("tree.page*.svg"))  # other formats untouched


def test_dendrogram_pages_chained_tree():
    X = (np.arange(130.0) ** 1.5)[:, None]  # each point joins the cluster of all before it
    Z = linkage(X, "single")
    names = [f"k{i}" for i in range(130)]
    pages = T.dendrogram_pages(Z, names, max_leaves=60)
    assert sorted(n for p in pages for n in p["names"]) == sorted(names)
    assert all(len(p["names"]) <= 60 for p in pages[1:])


@pytest.mark.parametrize(
    "Z, names, match",
    [
        (None, _names(9), "names has 9 entries but Z has 10 leaves"),
        (None, [], "names is empty|names has 0"),
        (np.zeros((0, 4)), ["a"], "Z is empty"),
        (np.zeros((3, 3)), _names(4), "linkage matrix of shape"),
        (np.array([[0, 1, 0.5, 2], [0, 1, 0.7, 2]], dtype=float), _names(3), "Z is not a valid linkage"),
    ],
)
def test_dendrogram_bad_input(tmp_path, Z, names, match):
    with pytest.raises(ValueError, match=match):
        T.dendrogram_figure(_linkage(10) if Z is None else Z, names, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# Minimum spanning tree
# --------------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("w", [10, 120])
def test_mst_figure(tmp_path, w):
    names = _names(w)
    src = T.mst_figure(_mst(w), names, tmp_path / "mst.svg", title=f"MST {w}")
    nodes = re.findall(r"^\s*c\d+ \[", src, flags=re.M)
    edges = re.findall(r"^\s*c\d+ -- c\d+", src, flags=re.M)
    assert len(nodes) == w and len(edges) == w - 1
    assert "layout=neato" in src
    noise = next(line for line in src.splitlines() if re.match(rf"\s*c{w - 1} \[", line))
    assert T._NOISE in noise  # the noise category highlighted
    labelled = len(re.findall(r"xlabel=", src))
    assert labelled == (w - 1 if w <= T.MST_EDGE_LABELS_MAX else 0)
    assert ("edge weight" in src) == (w > T.MST_EDGE_LABELS_MAX)  # a colour key instead of labels
    svg = _svg_text(tmp_path / "mst.svg")
    assert all(n in svg for n in names)
    _png(tmp_path / "mst.png")


@needs_dot
def test_mst_single_and_pair(tmp_path):
    T.mst_figure([], ["only"], [tmp_path / "one.svg"])
    assert "only" in _svg_text(tmp_path / "one.svg")
    src = T.mst_figure([(0, 1, 0.2)], ["a", "b"], [tmp_path / "two.png"])
    assert src.count(" -- ") == 1
    _png(tmp_path / "two.png", min_side=50)


@pytest.mark.parametrize(
    "edges, names, match",
    [
        ([(0, 1, 0.1)], ["a", "b", "c"], "edges has 1 edges, but a spanning tree of the 3 names has 2"),
        ([(0, 1, 0.1), (1, 5, 0.2)], ["a", "b", "c"], "outside the 3 names"),
        ([(0, 1, 0.1), (1, 0, 0.2)], ["a", "b", "c"], "closes a cycle"),
        ([(0, 1, np.nan), (1, 2, 0.2)], ["a", "b", "c"], "finite"),
        ([(0, 1)], ["a", "b"], "triples"),
        ([], [], "names is empty"),
    ],
)
def test_mst_bad_input(tmp_path, edges, names, match):
    with pytest.raises(ValueError, match=match):
        T.mst_figure(edges, names, tmp_path / "x.svg")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# UMAP maps
# --------------------------------------------------------------------------------------


def _maps(w, per=20, seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(w, 2)) * 5
    lab = np.repeat(np.arange(w), per)
    return Q[lab] + rng.normal(size=(w * per, 2)), lab, Q


@pytest.mark.parametrize("w", [10, 120])
def test_umap_figure(tmp_path, w):
    P, lab, Q = _maps(w)
    names = _names(w)
    fig = T.umap_figure(P, lab, Q, names, [tmp_path / "u.png", tmp_path / "u.pdf"], title="UMAP")
    _png(tmp_path / "u.png", min_side=300)
    assert (tmp_path / "u.pdf").read_bytes()[:5] == b"%PDF-"
    from matplotlib.text import Annotation

    images, concepts = fig.axes[:2]
    labels = [t.get_text() for t in concepts.texts if isinstance(t, Annotation)]
    if w <= T.LEGEND_MAX:
        legend = images.get_legend()
        assert legend is not None and [t.get_text() for t in legend.get_texts()] == names
        assert sorted(labels) == sorted(names)
    else:
        assert images.get_legend() is None
        assert 5 <= len(labels) <= T._ANNOTATE_MAX and set(labels) <= set(names)
        assert 5 <= sum(isinstance(t, Annotation) for t in images.texts) <= T._ANNOTATE_MAX
        assert any(f"of {w} concepts labelled" in t.get_text() for t in concepts.texts)


def test_umap_figure_labels_by_name(tmp_path):
    P, lab, Q = _maps(4, per=5)
    names = ["cat", "dog", "car", "noise"]
    T.umap_figure(P, [names[i] for i in lab], Q, names, tmp_path / "u.png")
    _png(tmp_path / "u.png")


def test_umap_figure_repeated_name_warns(tmp_path, caplog):
    P, lab, Q = _maps(3, per=5)
    names = ["crane", "crane", "dog"]  # ImageNet: the bird and the machine
    T.umap_figure(P, [names[i] for i in lab], Q, names, tmp_path / "u.png")
    assert "repeats ['crane']" in caplog.text
    caplog.clear()
    T.umap_figure(P, lab, Q, names, tmp_path / "v.png")  # indices: unambiguous, no warning
    assert "repeats" not in caplog.text


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(concept_names=["a", "b"]), "names has 2 entries but points_concepts has 4 points"),
        (dict(image_labels=[0, 1]), "image_labels has 2 entries but points_images has 20"),
        (dict(image_labels=[9] * 20), "image_labels must index concept_names"),
        (dict(image_labels=["zebra"] * 20), "'zebra', which is not in concept_names"),
        (dict(points_images=np.zeros((0, 2)), image_labels=[]), "points_images is empty"),
        (dict(points_concepts=np.zeros((4, 3))), "points_concepts must be an n × 2"),
        (dict(concept_names=[]), "names is empty|names has 0"),
    ],
)
def test_umap_figure_bad_input(tmp_path, change, match):
    P, lab, Q = _maps(4, per=5)
    kw = dict(points_images=P, image_labels=lab, points_concepts=Q, concept_names=["a", "b", "c", "d"])
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        T.umap_figure(out=tmp_path / "x.png", **kw)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# Agreement curve
# --------------------------------------------------------------------------------------


def _agreement(n_layers=12, refs=("skipgram", "wordnet"), stats=("cophenetic", "fowlkes_mallows_k4"), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for li in rng.permutation(n_layers):  # rows in any order; the figure sorts by layer_index
        for ref in refs:
            for stat in stats:
                q = float(rng.uniform(0, 0.1))
                rows.append(dict(model="resnet18", image_set="val", layer=f"layer{li // 3 + 1}.{li % 3}",
                                 layer_index=int(li), block=f"layer{li // 3 + 1}", reference=ref, statistic=stat,
                                 value=float(rng.uniform(-0.1, 0.8)), p=q, q=q, significant=q < 0.05))
    return pd.DataFrame(rows)


def _filled_markers(ax) -> int:
    """Scatter points whose face is not white (significant ones), over all marker collections."""
    from matplotlib.colors import to_rgba

    total = 0
    for coll in ax.collections:
        offsets = coll.get_offsets()
        faces = coll.get_facecolors()
        if len(offsets) == 0 or len(faces) == 0:
            continue
        filled = [not np.allclose(f, to_rgba("white")) for f in faces]
        total += len(offsets) if len(faces) == 1 and filled[0] else (sum(filled) if len(faces) > 1 else 0)
    return total


@pytest.mark.parametrize("n_layers, refs, stats", [
    (12, ("skipgram", "wordnet"), ("cophenetic", "fowlkes_mallows_k4", "fowlkes_mallows_k10")),
    (60, ("skipgram",), ("fowlkes_mallows_k4", "cophenetic")),
])
def test_agreement_curve(tmp_path, n_layers, refs, stats):
    frame = _agreement(n_layers, refs, stats)
    frame.loc[frame.index[0], ["value", "significant"]] = [np.nan, False]  # an undefined value: a gap, no marker
    fig = T.agreement_curve(frame, [tmp_path / "a.png", tmp_path / "a.svg"])
    _png(tmp_path / "a.png")
    _svg_text(tmp_path / "a.svg")
    ax = fig.axes[0]
    series = [line for line in ax.lines if not line.get_label().startswith("_")]
    assert len(series) == len(refs) * len(stats)
    expected = {f"{T._reference_label(r)} · {T._statistic_label(s)}" for r in refs for s in stats}
    assert {line.get_label() for line in series} == expected
    assert _filled_markers(ax) == int(frame["significant"].sum())
    for line in series:  # each line runs through the layers in graph order
        x = line.get_xdata()
        assert len(x) == n_layers and np.all(np.diff(x) > 0)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "significant (BHY)" in legend and "0 (no agreement: cophenetic r)" in legend
    assert any(np.allclose(line.get_ydata(), 0) for line in ax.lines)  # the null line
    # legend order: per reference, the cophenetic correlation first, then Fowlkes–Mallows by k
    first = [lab for lab in legend if lab.startswith(T._reference_label(refs[0]))]
    assert first[0].endswith("cophenetic r")
    ks = [int(m) for lab in first for m in re.findall(r"k = (\d+)", lab)]
    assert ks == sorted(ks)


def test_agreement_curve_beside_two_vs_two(tmp_path):
    frame = _agreement(12, ("skipgram",), ("cophenetic",))
    layers = frame.drop_duplicates("layer_index").sort_values("layer_index")
    rows = []
    for ds in ("skipgram", "glove"):
        for k, (layer, block) in enumerate(zip(layers["layer"], layers["block"])):
            rows.append(dict(model="resnet18", ds_model=ds, image_set="val", layer=layer, layer_index=k, block=block,
                             group="mean", statistic="2v2", value=0.55 + 0.02 * k, significant=k % 2 == 0))
    rows.append(dict(rows[0], layer="fc", layer_index=99))  # a layer without agreement rows: left out
    rows.append(dict(rows[0], group="g1"))  # not a group mean: left out
    two = pd.DataFrame(rows)
    fig = T.agreement_curve(frame, [tmp_path / "a.png"], two_vs_two=two)
    _png(tmp_path / "a.png")
    assert len(fig.axes) == 2
    lower = fig.axes[1]
    series = [line for line in lower.lines if not line.get_label().startswith("_")]
    assert {line.get_label() for line in series} == {"2 vs. 2 · skipgram", "2 vs. 2 · glove"}
    assert all(len(line.get_xdata()) == 12 for line in series)
    assert _filled_markers(lower) == 2 * 6
    assert any(np.allclose(line.get_ydata(), 0.5) for line in lower.lines)  # chance
    # an empty 2 vs. 2 table: one panel
    assert len(T.agreement_curve(frame, [tmp_path / "b.png"], two_vs_two=two.iloc[:0]).axes) == 1
    with pytest.raises(ValueError, match="two_vs_two lacks columns"):
        T.agreement_curve(frame, [tmp_path / "c.png"], two_vs_two=two.drop(columns=["group"]))


@pytest.mark.parametrize(
    "frame, match",
    [
        (pd.DataFrame(), "frame is empty"),
        (_agreement().drop(columns=["significant"]), r"frame lacks columns \['significant'\]"),
        (pd.concat([_agreement(), _agreement().assign(model="vgg16")]), "several models"),
    ],
)
def test_agreement_curve_bad_input(tmp_path, frame, match):
    with pytest.raises(ValueError, match=match):
        T.agreement_curve(frame, tmp_path / "x.png")


# --------------------------------------------------------------------------------------
# Prediction tree
# --------------------------------------------------------------------------------------


def _tree(c, d=16, seed=0):
    """A random tree shaped as Algorithm 2 builds one: c leaves, merges, one root."""
    rng = np.random.default_rng(seed)
    nodes = [{"id": i, "kind": "leaf", "children": [], "images": [i], "filters": list(range(d)),
              "critical_filter": None, "distance": None} for i in range(c)]
    active, filters = list(range(c)), {i: set(range(d)) for i in range(c)}
    while len(active) > 1 and any(len(filters[a]) > 1 for a in active):
        u, v = (int(x) for x in sorted(rng.choice(active, 2, replace=False)))
        common = filters[u] & filters[v]
        F = int(rng.choice(sorted(common))) if common else None
        s = len(nodes)
        filters[s] = common - {F}
        nodes.append({"id": s, "kind": "merge", "children": [u, v], "images": [], "filters": sorted(filters[s]),
                      "critical_filter": F, "distance": float(rng.uniform(0.01, 0.3))})
        active = [a for a in active if a not in (u, v)] + [s]
    nodes.append({"id": len(nodes), "kind": "root", "children": active, "images": list(range(c)),
                  "filters": list(range(d)), "critical_filter": None, "distance": None})
    return nodes


@needs_dot
@pytest.mark.parametrize("c, thumbs", [(10, True), (120, False)])
def test_prediction_tree_figure(tmp_path, c, thumbs):
    nodes = _tree(c)
    images = np.random.default_rng(1).uniform(0, 1, (c, 3, 32, 32)) if thumbs else None
    src = T.prediction_tree_figure(nodes, tmp_path / "pt.svg", title="horse", image_thumbs=images)
    merges = [n for n in nodes if n["kind"] == "merge"]
    for n in merges:
        line = next(x for x in src.splitlines() if re.match(rf"\s*n{n['id']} \[", x))
        assert f"{len(n['filters'])} reachable" in line
        assert (f"F {n['critical_filter']}" if n["critical_filter"] is not None else "no critical filter") in line
    assert len(re.findall(r"^\s*n\d+ -> n\d+", src, flags=re.M)) == len(nodes) - 1
    svg = _svg_text(tmp_path / "pt.svg")
    if thumbs:
        assert svg.count("data:image/png;base64,") == c and "wordlens-thumbs" not in svg  # embedded
    else:
        assert all(f"img {i}<" in svg or f"img {i}" in svg for i in range(c))
    _png(tmp_path / "pt.png")


@needs_dot
def test_prediction_tree_leaf_labels(tmp_path):
    nodes = _tree(6)
    ids = [f"n02381460_{i:04d}" for i in range(6)]
    src = T.prediction_tree_figure(nodes, [tmp_path / "l.svg"], leaf_labels=ids)
    svg = _svg_text(tmp_path / "l.svg")
    assert all(i in src and i in svg for i in ids) and "img 0" not in src


@needs_dot
def test_prediction_tree_root_only(tmp_path):
    # one filter: nothing to merge, the images hang off the root
    nodes = [{"id": i, "children": [], "filters": [0], "critical_filter": None, "distance": None} for i in range(3)]
    nodes.append({"id": 3, "children": [0, 1, 2], "filters": [0], "critical_filter": None, "distance": None})
    src = T.prediction_tree_figure(nodes, [tmp_path / "r.png"])
    assert "3 subtrees" in src
    _png(tmp_path / "r.png", min_side=50)


@pytest.mark.parametrize(
    "nodes, match",
    [
        ([], "nodes is empty"),
        ([{"id": 0, "children": [1], "filters": [], "critical_filter": None, "distance": None}], "not a node"),
        ([{"id": 0, "children": [], "filters": [], "critical_filter": None, "distance": None},
          {"id": 1, "children": [], "filters": [], "critical_filter": None, "distance": None}], "2 roots"),
        ([{"id": 0, "children": []}], r"nodes\[0\] lacks keys"),
    ],
)
def test_prediction_tree_bad_input(tmp_path, nodes, match):
    with pytest.raises(ValueError, match=match):
        T.prediction_tree_figure(nodes, tmp_path / "x.svg")
    assert not list(tmp_path.iterdir())
