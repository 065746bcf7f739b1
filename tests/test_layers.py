"""Layer names, presets on the real torchvision graphs, and selection."""

from __future__ import annotations

import warnings

import pytest
import torch
from torchvision.models.feature_extraction import get_graph_node_names

from wordlens import cli, layers, models


def meta_model(arch: str, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            return models._construct(models.ModelSpec(name=arch, arch=arch, **kw)).eval()


@pytest.fixture(scope="module")
def graphs():
    out = {}
    for arch in ("resnet50", "inception_v3", "vgg16"):
        model = meta_model(arch)
        out[arch] = (model, layers.graph_nodes(model))
    return out


def test_node_names_are_those_of_get_graph_node_names(graphs):
    for arch, (model, nodes) in graphs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eval_nodes = get_graph_node_names(model)[1]
        assert [n.name for n in nodes] == eval_nodes[1:], arch  # without the input placeholder


def test_resnet50_activation_preset_is_the_49_relus(graphs):
    _, nodes = graphs["resnet50"]
    sel = layers.select_layers("resnet50", nodes, "preset:activation")
    assert len(sel) == 49  # stem + 3 per bottleneck × 16
    assert sel[:4] == ["relu", "layer1.0.relu", "layer1.0.relu_1", "layer1.0.relu_2"]
    assert sel[-1] == "layer4.2.relu_2"
    assert layers.select_layers("resnet50", nodes, "preset:paper") == sel


def test_inception_v3_presets(graphs):
    _, nodes = graphs["inception_v3"]
    mixed = layers.select_layers("inception_v3", nodes, "preset:mixed")
    assert mixed == ["Mixed_5b.cat", "Mixed_5c.cat", "Mixed_5d.cat", "Mixed_6a.cat", "Mixed_6b.cat",
                     "Mixed_6c.cat", "Mixed_6d.cat", "Mixed_6e.cat", "Mixed_7a.cat", "Mixed_7b.cat_2",
                     "Mixed_7c.cat_2"]
    act = layers.select_layers("inception_v3", nodes, "preset:activation")
    assert len(act) == 94 + 11
    assert set(mixed) <= set(act)
    # graph order: a module's concatenation comes after its branches' activations
    assert act.index("Mixed_5b.cat") > act.index("Mixed_5b.branch_pool.relu")


def test_vgg16_preset_is_13_conv_and_dense(graphs):
    _, nodes = graphs["vgg16"]
    sel = layers.select_layers("vgg16", nodes, "preset:paper")
    conv_relus = [s for s in sel if s.startswith("features.")]
    assert len(conv_relus) == 13
    assert sel[13:] == ["classifier.1", "classifier.4", "classifier.6"]  # fc1, fc2 (after ReLU), logits


def test_selection_by_names_patterns_and_pixels(graphs):
    _, nodes = graphs["resnet50"]
    sel = layers.select_layers("resnet50", nodes, ["layer4.*.relu_2", "pixels", "fc", "re:layer1\\.0\\.relu(_1)?"])
    assert sel == ["pixels", "layer1.0.relu", "layer1.0.relu_1", "layer4.0.relu_2", "layer4.1.relu_2",
                   "layer4.2.relu_2", "fc"]


def test_unknown_layer_lists_nearest_names(graphs):
    _, nodes = graphs["resnet50"]
    with pytest.raises(ValueError, match=r"unknown layer 'layer4.0.relu_9'.*layer4.0.relu_2"):
        layers.select_layers("resnet50", nodes, ["layer4.0.relu_9"])
    with pytest.raises(ValueError, match="unknown layer preset 'mixed' for resnet50; available"):
        layers.select_layers("resnet50", nodes, "preset:mixed")
    with pytest.raises(ValueError, match="matches no node"):
        layers.select_layers("resnet50", nodes, "Mixed_*")


def test_layer_shapes(graphs):
    model, nodes = graphs["resnet50"]
    shapes = layers.layer_shapes(model, (3, 224, 224), nodes)
    assert shapes["relu"] == (64, 112, 112)
    assert shapes["layer4.2.relu_2"] == (2048, 7, 7)
    assert shapes["fc"] == (1000,)


def test_cli_lists_layers_with_shapes(capsys):
    assert cli.main(["layers", "resnet50", "--select", "preset:activation"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.strip() and not line.startswith("#") and " relu " in line]
    assert len(rows) == 49
    assert "(64, 112, 112)" in out and "802816" in out
    assert cli.main(["layers", "resnet50", "--select", "layer9.0.relu"]) == 2
    assert "nearest valid names" in capsys.readouterr().err
