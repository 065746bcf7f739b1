"""wordlens.attribution against literal references written from the definitions:
Grad-CAM by autograd at a hooked activation, guided backpropagation and DeconvNet by
a hand-written backward pass (tiny net) or custom ReLU backward rules (ResNet-18)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from wordlens import attribution as A
from wordlens.fractalnet import FractalNet
from wordlens.layers import feature_extractor

N_CLASSES = 10


def tiny_net(inplace: bool = False) -> nn.Sequential:
    """conv → ReLU → conv → ReLU → avgpool → flatten → linear, for 3 × 16 × 16 inputs.
    Graph node names: "0" … "6"."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace),
        nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(inplace=inplace),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(5 * 8 * 8, 3),
    ).eval()


def tiny_input(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=N_CLASSES).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))


# --------------------------------------------------------------------------------------
# Literal references
# --------------------------------------------------------------------------------------


def tiny_forward(net: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tiny net written out with its weights: every node's value by name."""
    conv1, _, conv2, _, _, _, fc = net
    z1 = F.conv2d(x, conv1.weight, conv1.bias, padding=1)
    a1 = torch.where(z1 > 0, z1, torch.zeros_like(z1))
    z2 = F.conv2d(a1, conv2.weight, conv2.bias, padding=1)
    a2 = torch.where(z2 > 0, z2, torch.zeros_like(z2))
    logits = F.linear(F.avg_pool2d(a2, 2).flatten(1), fc.weight, fc.bias)
    return {"pixels": x, "0": z1, "1": a1, "2": z2, "3": a2, "6": logits}


def cam_from(acts: torch.Tensor, logits: torch.Tensor, target: list[int]) -> torch.Tensor:
    """Grad-CAM from its definition: ReLU(Σ_k α_k A^k), α_k = spatial mean of ∂y_c/∂A^k."""
    y_c = logits[torch.arange(len(target)), torch.tensor(target)]
    (grads,) = torch.autograd.grad(y_c.sum(), acts)
    alpha = grads.mean((2, 3))
    return torch.relu((alpha[:, :, None, None] * acts).sum(1))


def upsampled(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def guided_rule(grad_out: torch.Tensor, forward_input: torch.Tensor) -> torch.Tensor:
    return grad_out.clamp(min=0) * (forward_input > 0)


def deconv_rule(grad_out: torch.Tensor, forward_input: torch.Tensor) -> torch.Tensor:
    return grad_out.clamp(min=0)


def tiny_projection(net: nn.Sequential, x: torch.Tensor, layer: str, channel: int, rule) -> torch.Tensor:
    """Backward pass by hand from the spatial sum of one channel of layer "1", "2" or "3":
    each ReLU passes ``rule(grad_out, its forward input)``, each conv its transpose."""
    conv1, _, conv2, _, _, _, _ = net
    with torch.no_grad():
        v = tiny_forward(net, x)
        g = torch.zeros_like(v[layer])
        g[:, channel] = 1.0
        if layer == "3":
            g = rule(g, v["2"])
        if layer in ("2", "3"):
            g = F.conv_transpose2d(g, conv2.weight, padding=1)
        g = rule(g, v["0"])
        return F.conv_transpose2d(g, conv1.weight, padding=1)


class _RuleReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp: torch.Tensor, guided: bool) -> torch.Tensor:
        ctx.save_for_backward(inp)
        ctx.guided = guided
        return inp.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (inp,) = ctx.saved_tensors
        return (guided_rule if ctx.guided else deconv_rule)(grad_out, inp), None


class RuleReLU(nn.Module):
    """A ReLU whose backward is the guided-backprop or the DeconvNet rule."""

    def __init__(self, guided: bool):
        super().__init__()
        self.guided = guided

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RuleReLUFunction.apply(x, self.guided)


def nth_output(model: nn.Module, module: nn.Module, x: torch.Tensor, call: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The output of the ``call``-th call of ``module`` (a forward hook) and the logits."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return seen[call], logits


def resnet_projection(model: nn.Module, x: torch.Tensor, block: str, call: int, channel: int,
                      guided: bool) -> torch.Tensor:
    """∂(Σ_hw A^channel)/∂x in a copy of the ResNet whose every ReLU has the rule's backward;
    A is the ``call``-th output of ``block``'s ReLU."""
    m = copy.deepcopy(model)
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, RuleReLU(guided))
    x = x.clone().requires_grad_(True)
    acts, _ = nth_output(m, m.get_submodule(block).relu, x, call)
    (grad,) = torch.autograd.grad(acts[:, channel].sum(), x)
    return grad


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    scale = float(expected.detach().abs().max())
    assert scale > 0, "degenerate reference"
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def untouched(model: nn.Module, fn) -> object:
    """Run ``fn()``; the parameters and buffers must be unchanged, have no .grad, keep
    their requires_grad flags, and the model must be in eval mode."""
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    out = fn()
    assert not model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags
    return out


# --------------------------------------------------------------------------------------
# probe and feature maps
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["pixels", "layer1.0.relu", "layer1.0.bn2", "layer2.0.relu_1", "fc"])
def test_probe_returns_logits_and_identity_sees_the_node(resnet, images, layer):
    gm, ident = A.probe(resnet, layer)
    assert isinstance(ident, nn.Identity)
    seen = []
    handle = ident.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        out = gm(images)
        logits = resnet(images)
    handle.remove()
    torch.testing.assert_close(out, logits, rtol=0, atol=0)
    assert len(seen) == 1
    # What the hook holds after the whole forward pass is the node's own output: the
    # in-place `out += identity` after bn2 and the in-place ReLUs did not overwrite it.
    expected = images if layer == "pixels" else feature_extractor(resnet, [layer])(images)[layer]
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=0)


def test_probe_of_fractalnet_and_tiny_net():
    torch.manual_seed(0)
    fnet = FractalNet(num_classes=5, n_blocks=2, n_columns=2, channels=(4, 8), dropout=(0.0, 0.0),
                      in_channels=1).eval()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    gm, _ = A.probe(fnet, "blocks.0.pool")
    with torch.no_grad():
        torch.testing.assert_close(gm(x), fnet(x), rtol=0, atol=0)
    net = tiny_net(inplace=True)
    gm, _ = A.probe(net, "2")
    with torch.no_grad():
        torch.testing.assert_close(gm(tiny_input()), net(tiny_input()), rtol=0, atol=0)


def test_unknown_layer_names_model_and_nearest(resnet):
    with pytest.raises(ValueError, match=r"unknown layer 'layer9\.0\.relu' for ResNet; nearest valid names: "
                                         r"\['layer4\.0\.relu'"):
        A.probe(resnet, "layer9.0.relu")
    fnet = FractalNet(num_classes=5, n_blocks=2, n_columns=2, channels=(4, 8), dropout=(0.0, 0.0))
    with pytest.raises(ValueError, match=r"for fractalnet; nearest valid names: \['blocks\.0\.pool'.*wordlens layers fractalnet"):
        A.probe(fnet, "blocks.0.poool")
    with pytest.raises(ValueError, match="unknown layer 'layer2.0.relu_9'"):
        A.feature_maps(resnet, torch.zeros(1, 3, 32, 32), "layer2.0.relu_9")


def test_feature_maps_equal_feature_extractor(resnet, images):
    fm = untouched(resnet, lambda: A.feature_maps(resnet, images, "layer2.0.relu_1"))
    assert fm.shape == (2, 128, 4, 4) and not fm.requires_grad
    torch.testing.assert_close(fm, feature_extractor(resnet, ["layer2.0.relu_1"])(images)["layer2.0.relu_1"],
                               rtol=0, atol=0)
    net, x = tiny_net(), tiny_input()
    assert_close(A.feature_maps(net, x, "3"), tiny_forward(net, x)["3"])
    torch.testing.assert_close(A.feature_maps(net, x, "pixels"), x, rtol=0, atol=0)


def test_top_channels_on_a_hand_made_tensor():
    # Channel means over images and positions: 1, 3, 3, -1, 2.
    per_channel = torch.tensor([1.0, 3.0, 3.0, -1.0, 2.0])
    acts = per_channel[None, :, None, None] + torch.tensor([[[[-1.0, 1.0]]], [[[2.0, -2.0]]]])
    assert acts.shape == (2, 5, 1, 2)
    assert A.top_channels(acts, 3) == [1, 2, 4]
    assert A.top_channels(acts, 5) == [1, 2, 4, 0, 3]
    assert A.top_channels(acts[1], 2) == [1, 2]
    assert A.top_channels(acts, 0) == []
    with pytest.raises(ValueError, match="between 0 and the 5 channels"):
        A.top_channels(acts, 6)
    with pytest.raises(ValueError, match="N × C × H × W or C × H × W"):
        A.top_channels(torch.zeros(2, 5), 1)


# --------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block, call, layer", [("layer2.0", 1, "layer2.0.relu_1"), ("layer1.0", 0, "layer1.0.relu")])
def test_grad_cam_resnet_matches_definition(resnet, images, block, call, layer):
    x = images.clone().requires_grad_(True)
    acts, logits = nth_output(resnet, resnet.get_submodule(block).relu, x, call)
    target = [3, 7]
    literal = cam_from(acts, logits, target)
    cam = untouched(resnet, lambda: A.grad_cam(resnet, images, layer, target, upsample=False))
    assert cam.shape == literal.shape == acts.shape[:1] + acts.shape[2:]
    assert_close(cam, literal)
    cam_up = untouched(resnet, lambda: A.grad_cam(resnet, images, layer, target))
    assert cam_up.shape == (2, 32, 32)
    assert_close(cam_up, upsampled(literal, (32, 32)))
    assert torch.equal(cam_up, A.grad_cam(resnet, images, layer, target))  # deterministic


@pytest.mark.parametrize("layer", ["3", "2", "1"])
def test_grad_cam_tiny_net_matches_definition(layer):
    net, x = tiny_net(inplace=True), tiny_input()
    v = tiny_forward(net, x.clone().requires_grad_(True))
    literal = cam_from(v[layer], v["6"], [2, 2])
    assert_close(untouched(net, lambda: A.grad_cam(net, x, layer, 2, upsample=False)), literal)
    assert_close(A.grad_cam(net, x, layer, [2, 2]), upsampled(literal, (16, 16)))


def test_grad_cam_needs_a_convolutional_layer(resnet, images):
    with pytest.raises(ValueError) as err:
        A.grad_cam(resnet, images, "fc", 0)
    msg = str(err.value)
    assert msg.startswith("Grad-CAM needs a convolutional layer (N × C × H × W output); fc gives shape N × 10; "
                          "convolutional layers of this model")
    assert "layer4.1.relu_1" in msg and "fc," not in msg
    with pytest.raises(ValueError, match="Grad-CAM needs a convolutional layer.*5 gives shape N × 320"):
        A.grad_cam(tiny_net(), tiny_input(), "5", 0)
    with pytest.raises(ValueError, match="target class 10 is out of range for a model with 10 outputs"):
        A.grad_cam(resnet, images, "layer4.1.relu_1", 10)
    with pytest.raises(ValueError, match="3 targets for 2 images"):
        A.grad_cam(resnet, images, "layer4.1.relu_1", [1, 2, 3])


# --------------------------------------------------------------------------------------
# Guided backpropagation and DeconvNet
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("layer, channel", [("3", 4), ("2", 1), ("1", 0)])
def test_projections_tiny_net_match_hand_backward(inplace, layer, channel):
    net, x = tiny_net(inplace), tiny_input()
    gbp = untouched(net, lambda: A.guided_backprop(net, x, layer, channel))
    dec = untouched(net, lambda: A.deconvnet(net, x, layer, channel))
    assert gbp.shape == dec.shape == x.shape
    assert_close(gbp, tiny_projection(net, x, layer, channel, guided_rule))
    assert_close(dec, tiny_projection(net, x, layer, channel, deconv_rule))
    assert not torch.allclose(gbp, dec)  # the forward mask matters
    assert torch.equal(gbp, A.guided_backprop(net, x, layer, channel))  # deterministic


def test_projection_of_pixels_is_the_channel_indicator():
    net, x = tiny_net(), tiny_input()
    expected = torch.zeros_like(x)
    expected[:, 1] = 1.0
    torch.testing.assert_close(A.guided_backprop(net, x, "pixels", 1), expected, rtol=0, atol=0)


@pytest.mark.parametrize("guided", [True, False])
def test_projections_resnet_match_rule_relus(resnet, images, guided):
    fn = A.guided_backprop if guided else A.deconvnet
    got = untouched(resnet, lambda: fn(resnet, images, "layer2.0.relu_1", 5))
    assert got.shape == images.shape
    assert_close(got, resnet_projection(resnet, images, "layer2.0", 1, 5, guided))


def test_channel_out_of_range(resnet, images):
    with pytest.raises(ValueError, match="channel 128 is out of range for layer layer2.0.relu_1, which has 128 channels"):
        A.guided_backprop(resnet, images, "layer2.0.relu_1", 128)
    with pytest.raises(ValueError, match="channel -1 is out of range for layer 3, which has 5 channels"):
        A.deconvnet(tiny_net(), tiny_input(), "3", -1)


def test_functional_relus_are_named_in_a_warning():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1)
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).mean((2, 3)))

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="functional.*relu.*nn.ReLU modules only"):
        A.guided_backprop(Functional().eval(), tiny_input(), "fc", 0)


def test_frozen_and_training_models_are_left_as_they_were():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=N_CLASSES)
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)  # mixed flags come back as they were
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    model.train()  # put in eval mode: the BN running statistics stay as they are
    untouched(model, lambda: A.grad_cam(model, x, "layer3.1.relu_1", 1))
    for fn in (A.guided_backprop, A.deconvnet):
        model.train()
        untouched(model, lambda: fn(model, x, "layer4.0.conv1", 3))
    model.train()
    untouched(model, lambda: A.feature_maps(model, x, "layer1.1.add"))
