"""FractalNet: structure, joins, drop-path, determinism, parameter count, graph nodes."""

from __future__ import annotations

import pytest
import torch

from wordlens import layers, models
from wordlens.fractalnet import FractalBlock, FractalNet, _DropPlan, fractal_join


def count_units(block: FractalBlock) -> list[int]:
    return [len(col) for col in block.columns]


@pytest.mark.parametrize("C", [1, 2, 3, 4])
def test_column_c_has_2_to_the_c_conv_units(C):
    block = FractalBlock(C, 3, 8, 0.0)
    assert count_units(block) == [2**c for c in range(C)]
    assert sum(count_units(block)) == 2**C - 1


def test_cifar_model_is_the_20_layer_network_with_published_size(capsys):
    net = FractalNet(num_classes=100)  # B = 5, C = 3, 64-128-256-512-512
    n_params = sum(p.numel() for p in net.parameters())
    print(f"FractalNet B=5 C=3 CIFAR-100: {n_params / 1e6:.2f}M parameters")
    assert 30e6 < n_params < 40e6  # paper: 38.6M; faithful re-implementations 33.7M
    deepest = sum(len(block.columns[-1]) for block in net.blocks)
    assert deepest == 20  # 4 conv layers along the deepest path of each of 5 blocks
    out = net.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)


@pytest.mark.parametrize("B, C, size, in_ch", [(3, 2, 32, 1), (2, 3, 16, 3), (4, 1, 32, 3)])
def test_shapes(B, C, size, in_ch):
    net = FractalNet(num_classes=7, n_blocks=B, n_columns=C, channels=[4 * 2**b for b in range(B)],
                     dropout=[0.1] * B, in_channels=in_ch).eval()
    assert net(torch.randn(3, in_ch, size, size)).shape == (3, 7)
    shapes = layers.layer_shapes(net, (in_ch, size, size))
    assert shapes[f"blocks.{B - 1}.pool"] == (4 * 2 ** (B - 1), size // 2**B, size // 2**B)


def test_join_is_the_mean_of_the_surviving_inputs():
    a, b, c = torch.full((1, 2), 1.0), torch.full((1, 2), 2.0), torch.full((1, 2), 6.0)
    assert torch.equal(fractal_join([a, b, c]), torch.full((1, 2), 3.0))
    assert torch.equal(fractal_join([a, b, c], [True, False, True]), torch.full((1, 2), 3.5))


def test_eval_block_equals_the_recursive_fractal_expansion():
    """f_1(z) = conv(z); f_{C+1}(z) = join(f_C(f_C(z)), conv(z)), with flat joins at equal depth."""
    torch.manual_seed(0)
    block = FractalBlock(3, 2, 4, 0.0).eval()
    cols = block.columns
    x = torch.randn(2, 2, 8, 8)
    with torch.no_grad():
        # depth 2: join(col2 unit0→unit1, col1 unit0)
        j1 = (cols[2][1](cols[2][0](x)) + cols[1][0](x)) / 2
        # depth 4: one flat join of col2 (unit2→unit3), col1 (unit1) and col0 (unit0)
        j2 = (cols[2][3](cols[2][2](j1)) + cols[1][1](j1) + cols[0][0](x)) / 3
        np_expected = block.pool(j2)
        assert torch.allclose(block(x), np_expected, atol=1e-6)


def test_local_drop_path_never_drops_every_input():
    gen = torch.Generator().manual_seed(0)
    plan = _DropPlan(3, local_drop=0.99, global_ratio=0.0, generator=gen)
    masks = [plan.keep(3) for _ in range(500)]
    assert all(any(m) for m in masks)
    assert any(sum(m) == 1 for m in masks)


def test_global_drop_path_runs_one_column_only():
    net = FractalNet(num_classes=5, n_blocks=2, n_columns=3, channels=[4, 8], dropout=[0, 0],
                     local_drop=0.15, global_ratio=1.0, seed=3).train()
    calls: dict[int, int] = {}
    for block in net.blocks:
        for c, col in enumerate(block.columns):
            for unit in col:
                unit.register_forward_hook(lambda m, i, o, c=c: calls.__setitem__(c, calls.get(c, 0) + 1))
    net(torch.randn(4, 3, 16, 16))
    assert len(calls) == 1  # a single column for the whole network
    (column, n), = calls.items()
    assert n == 2 * 2**column  # all of that column's units, in both blocks


def test_eval_mode_is_deterministic_and_drop_path_only_in_training():
    net = FractalNet(num_classes=5, n_blocks=2, n_columns=3, channels=[4, 8], dropout=[0.2, 0.2], seed=1)
    x = torch.randn(4, 3, 16, 16)
    net.eval()
    first = net(x)
    net.generator.manual_seed(999)
    assert torch.equal(net(x), first)
    net.eval_column = 0
    shallow = net(x)
    assert not torch.allclose(shallow, first)


def test_graph_nodes_and_presets():
    net = models.build_model(models.ModelSpec(name="f", arch="fractalnet", num_classes=100))
    nodes = layers.graph_nodes(net)
    names = [n.name for n in nodes]
    assert names[0] == "blocks.0.columns.2.0.conv"  # the first conv layer runs first
    paper = layers.select_layers("fractalnet", nodes, "preset:paper")
    assert paper == ["blocks.0.columns.2.0.relu"] + [f"blocks.{b}.pool" for b in range(5)] + ["fc"]
    joins = layers.select_layers("fractalnet", nodes, "preset:joins")
    assert joins == [f"blocks.{b}.fractal_join{s}" for b in range(5) for s in ("", "_1")]
