"""Figures and architecture diagrams on hand-made tables (the workflow's are in test_workflow)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from wordlens import figures
from wordlens.diagrams import architecture_dot, colour_scale, render
from wordlens.layers import graph_edges, meta_model, resolve_selection

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is installed by `make test` (root)")


def _assert_png_pdf(png, pdf, min_bytes=5_000):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > min_bytes
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > min_bytes


def test_colour_scale_is_centred_on_chance():
    assert colour_scale([0.55, 0.62]) == pytest.approx((0.35, 0.65))  # 0.12 → rounded up to 0.15
    assert colour_scale([0.5, 0.52]) == pytest.approx((0.4, 0.6))  # at least ±0.1
    assert colour_scale([0.2, 0.9]) == pytest.approx((0.1, 0.9))
    assert colour_scale([float("nan"), 0.7]) == pytest.approx((0.3, 0.7))


@needs_dot
def test_resnet50_diagram_has_one_coloured_node_per_analysed_layer(tmp_path):
    nodes, edges = graph_edges(meta_model({"arch": "resnet50"}))
    layers, _ = resolve_selection({"arch": "resnet50"}, ["pixels", "preset:paper"])
    assert len(layers) == 50 and nodes[0].name == "pixels"
    # skip connections: every residual add has two inputs
    adds = [n.name for n in nodes if n.kind == "add"]
    assert len(adds) == 16 and all(sum(b == a for _, b in edges) == 2 for a in adds)
    rng = np.random.default_rng(0)
    values = {layer: float(v) for layer, v in zip(layers, rng.uniform(0.45, 0.8, len(layers)))}
    sig = {layer: v > 0.6 for layer, v in values.items()}
    outs = [tmp_path / "r50.svg", tmp_path / "r50.pdf", tmp_path / "r50.png"]
    render(architecture_dot(nodes, edges, values, sig, title="resnet50"), outs)
    svg = outs[0].read_text()
    groups = re.findall(r'<g id="node\d+" class="node ([a-z]+)">', svg)
    assert groups.count("analysed") == 50
    assert groups.count("other") == len(nodes) - 50
    fills = re.findall(r'class="node analysed">.*?<path fill="(#[0-9a-f]{6})"', svg, flags=re.S)
    assert len(fills) == 50 and len(set(fills)) > 10  # coloured by value, not one colour
    assert svg.count('class="node analysed"') == 50
    _assert_png_pdf(outs[2], outs[1])


def test_diagram_rejects_layers_not_in_the_graph():
    nodes, edges = graph_edges(meta_model({"arch": "resnet18"}))
    with pytest.raises(ValueError, match="not nodes of this graph"):
        architecture_dot(nodes, edges, {"layer9.relu": 0.6})


def _two_vs_two_table(n_layers: int, ds_models=("skipgram", "glove")) -> pd.DataFrame:
    rows = []
    for d, ds in enumerate(ds_models):
        for i in range(n_layers):
            v = 0.5 + 0.3 * i / n_layers + 0.02 * d
            rows.append({"model": "m", "ds_model": ds, "image_set": "val", "layer": f"layer{i}",
                         "layer_index": i, "block": f"Mixed_{i // 9}", "group": "mean", "statistic": "2v2",
                         "value": v, "significant": v > 0.6, "n_concepts": 838, "n_permutations": 1000})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_layers", [5, 106])
def test_two_vs_two_figure(tmp_path, n_layers):
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    figures.plot_two_vs_two(_two_vs_two_table(n_layers), [pdf, png])
    _assert_png_pdf(png, pdf)


def test_one_vs_two_figures_by_ds_model_and_by_category(tmp_path):
    rows = []
    cats = ["all", "most similar", "least similar"]
    for g in cats:
        for i in range(6):
            rows.append({"model": "m", "ds_model": "sg", "image_set": "val", "layer": f"l{i}", "layer_index": i,
                         "block": f"b{i // 2}", "group": g, "statistic": "1v2", "value": 0.4 + 0.05 * i,
                         "significant": i > 3, "n_concepts": 10})
        for j in range(3):
            rows.append({"model": "m", "ds_model": "sg", "image_set": "val", "layer": f"b{j}", "layer_index": j,
                         "block": f"b{j}", "group": g, "statistic": "1v2_block_mean", "value": 0.5,
                         "significant": False, "n_concepts": 10})
    t = pd.DataFrame(rows)
    figures.plot_one_vs_two(t, [tmp_path / "a.pdf", tmp_path / "a.png"], title="adv", by="group")
    _assert_png_pdf(tmp_path / "a.png", tmp_path / "a.pdf")
    figures.plot_one_vs_two(t[t["group"] == "all"], [tmp_path / "m.pdf", tmp_path / "m.png"], title="mis")
    _assert_png_pdf(tmp_path / "m.png", tmp_path / "m.pdf")
    # A category without test images (all NaN) gets no line and no legend entry; the others keep theirs.
    t2 = t.copy()
    t2.loc[t2["group"] == "least similar", "value"] = np.nan
    figures.plot_one_vs_two(t2, [tmp_path / "n.svg"], title="adv", by="group")
    svg = (tmp_path / "n.svg").read_text()
    assert "most similar (n = 10)" in svg and "average (n = 10)" in svg and "least similar" not in svg
    with pytest.raises(ValueError, match="no 1 vs. 2 rows"):
        figures.plot_one_vs_two(t[t["statistic"] == "none"], [tmp_path / "x.png"])


def test_concept_figure_names_and_truncates(tmp_path):
    per = pd.DataFrame({"concept": [f"n{i:08d}" for i in range(60)], "accuracy": np.linspace(0.2, 0.9, 60),
                        "accuracy_sd": 0.05})
    names = {f"n{i:08d}": f"concept {i}" for i in range(60)}
    figures.plot_concepts(per, [tmp_path / "c.pdf", tmp_path / "c.png", tmp_path / "c.svg"], names=names, n_show=10)
    _assert_png_pdf(tmp_path / "c.png", tmp_path / "c.pdf")
    svg = (tmp_path / "c.svg").read_text()
    shown = set(re.findall(r"concept (\d+)", svg))
    assert shown == {str(i) for i in [*range(10), *range(50, 60)]}  # the 10 worst and 10 best, by name
    assert "40 more" in svg


def test_undefined_layers_are_marked_not_drawn_as_values(tmp_path):
    t = _two_vs_two_table(6, ds_models=("skipgram",))
    t["n_constant"] = 0
    t.loc[3, ["value", "n_constant"]] = [np.nan, 5]  # constant activations: no value
    figures.plot_two_vs_two(t, [tmp_path / "u.svg", tmp_path / "u.png"])
    svg = (tmp_path / "u.svg").read_text()
    assert "undefined: constant" in svg
    figures.plot_two_vs_two(_two_vs_two_table(6, ds_models=("skipgram",)), [tmp_path / "d.svg"])
    assert "undefined" not in (tmp_path / "d.svg").read_text()
    t.loc[:, ["value", "n_constant"]] = [np.nan, 5]  # every layer undefined still draws
    figures.plot_two_vs_two(t, [tmp_path / "all.png"])
    assert (tmp_path / "all.png").stat().st_size > 5_000
