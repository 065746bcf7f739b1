"""Activation maximization and pixel fooling (wordlens.actmax) against literal references.

Every reference here is written from the definitions (Mahendran & Vedaldi's regularisers,
Dai eq. 1–2 and §2.1, the documented update rules) with loops, numpy or a hand-called
forward pass of a tiny network — never with wordlens.actmax itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from wordlens import actmax as am
from wordlens.actmax import ActMaxConfig, Term

H, W = 16, 12  # non-square, so that (y, x) mix-ups show
MEAN = (0.45, 0.5, 0.55)
STD = (0.2, 0.25, 0.3)


class TinyNet(nn.Module):
    """conv1 → relu1 → conv2 (stride 2) → relu2 → global mean → flatten → fc."""

    def __init__(self, classes: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 5, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(5, 6, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, classes)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))

    def parts(self, x) -> dict[str, torch.Tensor]:
        """Every intermediate value, by calling the submodules by hand (the reference forward)."""
        out = {"conv1": self.conv1(x)}
        out["relu1"] = torch.relu(out["conv1"])
        out["conv2"] = self.conv2(out["relu1"])
        out["relu2"] = torch.relu(out["conv2"])
        out["flatten"] = out["relu2"].mean(dim=(2, 3))
        out["fc"] = out["flatten"] @ self.fc.weight.T + self.fc.bias
        return out


def normalize(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(MEAN, dtype=x.dtype)[:, None, None]
    s = torch.tensor(STD, dtype=x.dtype)[:, None, None]
    return (x - m) / s


def images(n: int, seed: int = 1, h: int = H, w: int = W) -> torch.Tensor:
    return torch.rand((n, 3, h, w), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The models here are tiny: one thread is as fast, and steadier on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def net() -> TinyNet:
    return TinyNet().eval()


# --------------------------------------------------------------------------------------
# Regularisers against loops
# --------------------------------------------------------------------------------------


def alpha_loop(x: np.ndarray, alpha: float, mean) -> np.ndarray:
    """Σ_c Σ_ij |x_cij − m_c|^α per image; m_c the given channel mean, or the image's own."""
    n, c, h, w = x.shape
    out = np.zeros(n)
    for k in range(n):
        for ch in range(c):
            m = x[k, ch].mean() if mean is None else (mean[ch] if len(mean) > 1 else mean[0])
            for i in range(h):
                for j in range(w):
                    out[k] += abs(x[k, ch, i, j] - m) ** alpha
    return out


def tv_loop(x: np.ndarray, beta: float) -> np.ndarray:
    """Σ_c Σ_{i<H-1, j<W-1} ((x_{i,j+1} − x_ij)² + (x_{i+1,j} − x_ij)²)^(β/2) per image."""
    n, c, h, w = x.shape
    out = np.zeros(n)
    for k in range(n):
        for ch in range(c):
            for i in range(h - 1):
                for j in range(w - 1):
                    a = x[k, ch, i, j + 1] - x[k, ch, i, j]
                    b = x[k, ch, i + 1, j] - x[k, ch, i, j]
                    out[k] += (a * a + b * b) ** (beta / 2)
    return out


def l2_loop(x: np.ndarray, mean) -> np.ndarray:
    n, c, h, w = x.shape
    out = np.zeros(n)
    for k in range(n):
        for ch in range(c):
            m = 0.0 if mean is None else (mean[ch] if len(mean) > 1 else mean[0])
            out[k] += sum((x[k, ch, i, j] - m) ** 2 for i in range(h) for j in range(w))
    return out


@pytest.mark.parametrize("alpha", [6.0, 2.0, 1.5])
@pytest.mark.parametrize("mean", [None, (0.4,), (0.3, 0.5, 0.7)])
def test_alpha_norm_matches_loop(alpha, mean):
    x = images(2, seed=3, h=5, w=4).double()
    got = am.alpha_norm(x, alpha, mean)
    assert got.shape == (2,)
    np.testing.assert_allclose(got.numpy(), alpha_loop(x.numpy(), alpha, mean), rtol=1e-12)


def test_alpha_norm_default_is_six_and_mean_subtracted():
    x = torch.full((1, 3, 4, 4), 0.7, dtype=torch.float64)
    assert float(am.alpha_norm(x)) == 0.0  # a constant image minus its own mean
    x[0, 0, 0, 0] = 0.7 + 0.5
    dev = 0.5 * 15 / 16  # the outlier's deviation from its channel's mean; the others' is 0.5/16
    assert float(am.alpha_norm(x)) == pytest.approx(dev ** 6 + 15 * (0.5 / 16) ** 6, rel=1e-12)


@pytest.mark.parametrize("beta", [2.0, 1.0, 3.0, 0.5])
def test_total_variation_matches_loop(beta):
    x = images(2, seed=4, h=6, w=5).double()
    got = am.total_variation(x, beta)
    assert got.shape == (2,)
    np.testing.assert_allclose(got.numpy(), tv_loop(x.numpy(), beta), rtol=1e-12)


def test_total_variation_hand_example_and_finite_gradient():
    # one channel, 2 × 2: only pixel (0, 0) has both neighbours
    x = torch.tensor([[[[0.0, 0.3], [0.4, 1.0]]]], dtype=torch.float64)
    assert float(am.total_variation(x, 2.0)) == pytest.approx(0.09 + 0.16)
    assert float(am.total_variation(x, 1.0)) == pytest.approx(0.5)
    # β < 2 on a constant image: the value is 0 and the gradient 0, not NaN
    flat = torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64, requires_grad=True)
    value = am.total_variation(flat, 1.0)
    (grad,) = torch.autograd.grad(value.sum(), flat)
    assert float(value.detach()) == 0.0 and torch.isfinite(grad).all() and float(grad.abs().max()) == 0.0


@pytest.mark.parametrize("mean", [None, (0.5,), (0.2, 0.4, 0.6)])
def test_l2_matches_loop(mean):
    x = images(2, seed=5, h=4, w=3).double()
    np.testing.assert_allclose(am.l2(x, mean).numpy(), l2_loop(x.numpy(), mean), rtol=1e-12)


def test_regulariser_bad_arguments():
    x = images(1, h=4, w=4)
    with pytest.raises(ValueError, match="alpha"):
        am.alpha_norm(x, 0.0)
    with pytest.raises(ValueError, match="beta"):
        am.total_variation(x, -1.0)
    with pytest.raises(ValueError, match="mean needs 1 or 3"):
        am.alpha_norm(x, 6.0, (0.1, 0.2))
    with pytest.raises(ValueError, match="mean needs 1 or 3"):
        am.l2(x, (0.1, 0.2))


# --------------------------------------------------------------------------------------
# Transforms and starts
# --------------------------------------------------------------------------------------


def test_translate_is_torch_roll_per_image():
    x = images(3, seed=6)
    dy, dx = torch.tensor([1, -2, 0]), torch.tensor([3, 0, -1])
    got = am.translate(x, dy, dx)
    for i in range(3):
        torch.testing.assert_close(got[i], torch.roll(x[i], (int(dy[i]), int(dx[i])), (1, 2)), rtol=0, atol=0)


def test_blur_keeps_constant_images_and_zero_transform_is_identity():
    x = torch.full((2, 3, 8, 8), 0.3)
    torch.testing.assert_close(am.gaussian_blur(x, 1.2), x, rtol=0, atol=1e-6)
    y = images(2, seed=7)
    torch.testing.assert_close(am.random_transform(y, torch.Generator().manual_seed(0)), y, rtol=0, atol=0)
    torch.testing.assert_close(am.rotate(y, torch.zeros(2)), y, rtol=0, atol=1e-5)


def test_noise_start_shape_seed_and_channel_statistics():
    mean, std = (0.3, 0.5, 0.6), (0.05, 0.1, 0.08)  # ≥ 3.75 σ from the clip bounds: clipping negligible
    a = am.noise_start(6, (3, 48, 40), mean, std, seed=11)
    assert a.shape == (6, 3, 48, 40) and a.dtype == torch.float32 and a.device.type == "cpu"
    torch.testing.assert_close(a, am.noise_start(6, (3, 48, 40), mean, std, seed=11), rtol=0, atol=0)
    assert not torch.equal(a, am.noise_start(6, (3, 48, 40), mean, std, seed=12))
    per_channel = a.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    np.testing.assert_allclose(per_channel.mean(axis=1), mean, atol=0.005)
    np.testing.assert_allclose(per_channel.std(axis=1), std, rtol=0.03)
    b = am.noise_start(2, (1, 8, 8), [0.5], [2.0], seed=0)  # wide noise is clipped to [0, 1]
    assert float(b.min()) == 0.0 and float(b.max()) == 1.0


def test_noise_start_bad_arguments():
    with pytest.raises(ValueError, match="mean and std need 1 or 3"):
        am.noise_start(1, (3, 4, 4), (0.1, 0.2), (0.1,))
    with pytest.raises(ValueError, match="std must be"):
        am.noise_start(1, (3, 4, 4), (0.1,), (-0.1,))


# --------------------------------------------------------------------------------------
# Objective values against a hand-called forward pass
# --------------------------------------------------------------------------------------


def reference_value(net: TinyNet, objective: list[Term], x: torch.Tensor) -> float:
    """Φ of one image, from the hand forward pass."""
    with torch.no_grad():
        parts = {k: v[0] for k, v in net.parts(normalize(x[None])).items()}
    total = 0.0
    for t in objective:
        if t.kind == "logit":
            v = parts["fc"][t.index]
        elif t.kind == "softmax":
            e = np.exp(parts["fc"].double().numpy())
            v = e[t.index] / e.sum()
        elif t.kind == "layer":
            v = parts[t.layer].mean()
        elif t.kind == "channel":
            a = parts[t.layer][t.index]
            v = a.mean()
        else:
            v = parts[t.layer][t.index, t.position[0], t.position[1]]
        total += t.weight * float(v)
    return total


OBJECTIVES = [
    [Term("softmax", index=2)],
    [Term("logit", index=1)],
    [Term("layer", layer="relu1")],
    [Term("layer", layer="conv2")],
    [Term("channel", index=3, layer="conv2")],
    [Term("channel", index=4, layer="flatten")],  # a 2-D layer: the unit itself
    [Term("neuron", index=2, layer="conv2", position=(7, 2))],  # conv2 is 8 × 6: y = 7 exists, x = 7 would not
    [Term("neuron", index=0, layer="conv1", position=(3, 10))],
    [Term("logit", index=0, weight=0.5), Term("channel", index=2, layer="conv2", weight=-2.0),
     Term("neuron", index=1, layer="relu1", position=(4, 5), weight=1.5), Term("softmax", index=3, weight=3.0),
     Term("logit", index=2, weight=-0.25), Term("layer", layer="relu2", weight=0.75)],
]


def test_objective_values_match_hand_forward(net):
    x = images(len(OBJECTIVES), seed=8)
    got = am.evaluate_objectives(net, normalize, OBJECTIVES, x)
    assert got.shape == (len(OBJECTIVES),) and got.dtype == np.float64
    want = [reference_value(net, obj, x[i]) for i, obj in enumerate(OBJECTIVES)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # a softmax probability by hand from the logits
    with torch.no_grad():
        logits = net(normalize(x[:1]))[0].double().numpy()
    assert got[0] == pytest.approx(math.exp(logits[2]) / np.exp(logits).sum(), rel=1e-5)


def test_compiled_objectives_output_and_layer_output_name(net):
    compiled = am.compile_objectives(net, [[Term("logit", index=0, layer="fc")], [Term("channel", 1, "relu2")]],
                                     (3, H, W))
    assert compiled.output == "fc" and compiled.layers == ["relu2", "fc"]
    assert compiled.shapes["relu2"] == (6, 8, 6) and compiled.shapes["fc"] == (4,)
    x = images(2, seed=9)
    with torch.no_grad():
        got = compiled(normalize(x))
        parts = net.parts(normalize(x))
    torch.testing.assert_close(got, torch.stack([parts["fc"][0, 0], parts["relu2"][1, 1].mean()]),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------
# activation_maximization
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: "+".join(t.kind for t in o))
def test_each_objective_rises(net, objective):
    start = am.noise_start(1, (3, H, W), MEAN, (0.1,), seed=2)
    result = am.activation_maximization(net, normalize, [objective], start, ActMaxConfig(steps=25, step_size=0.03))
    before = reference_value(net, objective, start[0])
    after = reference_value(net, objective, result.images[0])
    assert result.initial[0] == pytest.approx(before, rel=1e-4, abs=1e-5)
    assert result.final[0] == pytest.approx(after, rel=1e-4, abs=1e-5)
    assert after > before + 1e-3
    assert result.images.shape == start.shape and result.images.dtype == torch.float32
    assert float(result.images.min()) >= 0.0 and float(result.images.max()) <= 1.0


def test_rises_with_normalized_steps_regulariser_and_transforms(net):
    objs = [[Term("logit", index=3)], [Term("channel", index=1, layer="conv2")]]
    start = am.noise_start(2, (3, H, W), MEAN, (0.1,), seed=3)
    cfg = ActMaxConfig(steps=30, step_size=0.01, optimizer="normalized", lambda_tv=0.05, lambda_alpha=0.1,
                       jitter=2, rotate=5.0, blur_sigma=0.5, blur_every=4)
    result = am.activation_maximization(net, normalize, objs, start, cfg)
    assert (result.final > result.initial).all()


def test_total_variation_weight_lowers_final_tv(net):
    objs = [[Term("logit", index=1)], [Term("channel", index=0, layer="conv2")]]
    start = am.noise_start(2, (3, H, W), MEAN, (0.15,), seed=4)
    base = dict(steps=40, step_size=0.02)
    plain = am.activation_maximization(net, normalize, objs, start, ActMaxConfig(**base))
    smooth = am.activation_maximization(net, normalize, objs, start, ActMaxConfig(**base, lambda_tv=2.0))
    tv_plain, tv_smooth = tv_loop(plain.images.double().numpy(), 2.0), tv_loop(smooth.images.double().numpy(), 2.0)
    assert (tv_smooth < 0.5 * tv_plain).all()
    np.testing.assert_allclose(smooth.regularizers["total_variation"], tv_smooth, rtol=1e-4)
    np.testing.assert_allclose(smooth.start_regularizers["total_variation"], tv_loop(start.double().numpy(), 2.0),
                               rtol=1e-4)


def test_weights_frozen_and_flags_restored():
    model = TinyNet(seed=5)
    model.train()
    model.conv2.bias.requires_grad_(False)  # a mixed set of flags must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    start = am.noise_start(2, (3, H, W), MEAN, (0.1,), seed=5)
    cfg = ActMaxConfig(steps=5, lambda_tv=0.1, jitter=1)
    am.activation_maximization(model, normalize, [[Term("logit", 0)], [Term("layer", layer="relu2")]], start, cfg)
    assert model.training and all(m.training for m in model.modules())
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_eval_mode_during_run():
    """Dropout would make the run random; eval mode (documented) switches it off."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * H * W, 3))
    model.train()
    start = am.noise_start(1, (3, H, W), MEAN, (0.1,), seed=6)
    runs = [am.activation_maximization(model, normalize, [[Term("logit", 0)]], start, ActMaxConfig(steps=3))
            for _ in range(2)]
    torch.testing.assert_close(runs[0].images, runs[1].images, rtol=0, atol=0)
    assert model.training


def test_deterministic_given_seed(net):
    objs = [[Term("logit", index=0)], [Term("neuron", index=1, layer="conv2", position=(2, 3))]]
    start = am.noise_start(2, (3, H, W), MEAN, (0.1,), seed=7)
    cfg = ActMaxConfig(steps=12, lambda_tv=0.1, lambda_alpha=0.5, lambda_l2=0.01, jitter=2, rotate=8.0,
                       blur_sigma=0.6, blur_every=3, seed=3)
    a = am.activation_maximization(net, normalize, objs, start, cfg)
    b = am.activation_maximization(net, normalize, objs, start, cfg)
    torch.testing.assert_close(a.images, b.images, rtol=0, atol=0)
    np.testing.assert_array_equal(a.trace_value, b.trace_value)
    c = am.activation_maximization(net, normalize, objs, start, ActMaxConfig(**{**cfg.to_dict(), "seed": 4}))
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("optimizer", ["adam", "normalized"])
def test_batch_equals_each_alone(net, optimizer):
    """Without random draws (blur only) an image's result does not depend on the batch."""
    objs = [[Term("logit", index=2)], [Term("channel", index=5, layer="relu2")],
            [Term("neuron", index=0, layer="conv1", position=(9, 4)), Term("logit", index=1, weight=0.3)]]
    start = am.noise_start(3, (3, H, W), MEAN, (0.1,), seed=8)
    cfg = ActMaxConfig(steps=10, step_size=0.02, optimizer=optimizer, lambda_tv=0.05, lambda_alpha=0.2,
                       lambda_l2=0.01, blur_sigma=0.7, blur_every=2)
    batch = am.activation_maximization(net, normalize, objs, start, cfg)
    for i, obj in enumerate(objs):
        alone = am.activation_maximization(net, normalize, [obj], start[i:i + 1], cfg)
        torch.testing.assert_close(batch.images[i], alone.images[0], rtol=0, atol=1e-4)
        assert batch.final[i] == pytest.approx(alone.final[0], rel=1e-4, abs=1e-5)


def literal_ascent(net: TinyNet, objective_fn, x0: torch.Tensor, steps: int, lr: float, rule: str,
                   reg_fn=None, betas=(0.9, 0.999), eps=1e-8) -> torch.Tensor:
    """Gradient ascent on Φ − R written out: the documented Adam (Kingma & Ba, bias-corrected)
    or normalised rule x ← x + lr · g / mean|g| (per image), then clip to [0, 1]."""
    x = x0.clone().double()
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    b1, b2 = betas
    for t in range(1, steps + 1):
        xg = x.clone().requires_grad_(True)
        gain = objective_fn(net.parts(normalize(xg)))
        if reg_fn is not None:
            gain = gain - reg_fn(xg)
        (g,) = torch.autograd.grad(gain.sum(), xg)
        with torch.no_grad():
            if rule == "adam":
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                m_hat = m / (1 - b1 ** t)
                v_hat = v / (1 - b2 ** t)
                x = x + lr * m_hat / (v_hat.sqrt() + eps)
            else:
                x = x + lr * g / g.abs().mean(dim=(1, 2, 3), keepdim=True)
            x = x.clamp(0.0, 1.0)
    return x.float()


def tv_torch(x):
    """V² written out for the literal loop (autograd gives its gradient)."""
    a = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    b = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return (a * a + b * b).sum(dim=(1, 2, 3))


@pytest.mark.parametrize("rule", ["adam", "normalized"])
def test_plain_step_matches_literal_loop(rule):
    net = TinyNet(seed=9).double().eval()
    start = am.noise_start(2, (3, H, W), MEAN, (0.1,), seed=9)
    objs = [[Term("logit", index=1)], [Term("channel", index=2, layer="conv2")]]

    def phi(p):
        return torch.stack([p["fc"][0, 1], p["conv2"][1, 2].mean()])

    cfg = ActMaxConfig(steps=8, step_size=0.01, optimizer=rule, betas=(0.8, 0.99))
    got = am.activation_maximization(net.float(), normalize, objs, start, cfg).images
    want = literal_ascent(net.double(), phi, start, 8, 0.01, rule, betas=(0.8, 0.99))
    torch.testing.assert_close(got, want, rtol=0, atol=2e-4)
    assert (got - start).abs().max() > 0.01  # the steps moved the pixels


def test_regularised_step_matches_literal_loop():
    net = TinyNet(seed=10).double().eval()
    start = am.noise_start(2, (3, H, W), MEAN, (0.15,), seed=10)
    objs = [[Term("logit", index=0)], [Term("layer", layer="relu1")]]
    lam_a, lam_tv, lam_l2, data_mean = 2.0, 0.3, 0.05, (0.5, 0.4, 0.3)

    def phi(p):
        return torch.stack([p["fc"][0, 0], p["relu1"][1].mean()])

    def reg(x):
        centred = x - torch.tensor(data_mean, dtype=x.dtype)[None, :, None, None]
        return (lam_a * centred.abs().pow(6).sum(dim=(1, 2, 3)) + lam_tv * tv_torch(x)
                + lam_l2 * centred.pow(2).sum(dim=(1, 2, 3)))

    cfg = ActMaxConfig(steps=8, step_size=0.01, lambda_alpha=lam_a, lambda_tv=lam_tv, lambda_l2=lam_l2,
                       data_mean=data_mean)
    result = am.activation_maximization(net.float(), normalize, objs, start, cfg)
    want = literal_ascent(net.double(), phi, start, 8, 0.01, "adam", reg_fn=reg)
    torch.testing.assert_close(result.images, want, rtol=0, atol=2e-4)
    # the trace records λR of the image each step started from
    assert result.trace_steps.tolist() == [0, 7]
    np.testing.assert_allclose(result.trace_regularizer[0], reg(start.double()).numpy(), rtol=1e-4)


def test_data_mean_taken_from_preprocessing():
    from wordlens.models import Preprocessing

    pre = Preprocessing(resize=None, crop=H, mean=MEAN, std=STD)
    model = TinyNet(seed=11).eval()
    start = am.noise_start(1, (3, H, H), MEAN, (0.1,), seed=11)
    result = am.activation_maximization(model, pre.normalize, [[Term("logit", 0)]], start, ActMaxConfig(steps=2))
    x = result.images.double().numpy()
    np.testing.assert_allclose(result.regularizers["alpha_norm"], alpha_loop(x, 6.0, MEAN), rtol=1e-4)
    np.testing.assert_allclose(result.regularizers["l2"], l2_loop(x, MEAN), rtol=1e-5)


def test_trace_and_zero_steps(net):
    start = am.noise_start(2, (3, H, W), MEAN, (0.1,), seed=12)
    objs = [[Term("logit", 0)], [Term("logit", 1)]]
    r = am.activation_maximization(net, normalize, objs, start, ActMaxConfig(steps=23, trace_every=10))
    assert r.trace_steps.tolist() == [0, 10, 20, 22] and r.trace_value.shape == (4, 2)
    np.testing.assert_allclose(r.trace_regularizer, 0.0)
    zero = am.activation_maximization(net, normalize, objs, start, ActMaxConfig(steps=0))
    torch.testing.assert_close(zero.images, start, rtol=0, atol=0)
    np.testing.assert_array_equal(zero.initial, zero.final)
    assert zero.trace_value.shape == (0, 2)


def test_empty_batch(net):
    r = am.activation_maximization(net, normalize, [], torch.zeros((0, 3, H, W)), ActMaxConfig(steps=3))
    assert r.images.shape == (0, 3, H, W) and r.initial.shape == (0,) and r.final.shape == (0,)
    assert am.evaluate_objectives(net, normalize, [], torch.zeros((0, 3, H, W))).shape == (0,)


def test_resnet18_block_output():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    seen = {}
    hook = model.layer1.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o.detach().clone()))
    with torch.no_grad():
        logits = model(normalize(x))
    hook.remove()
    # layer1's output is the in-place ReLU after the last block's residual add
    objs = [[Term("channel", index=7, layer="layer1.1.relu_1")], [Term("logit", index=3)]]
    result = am.activation_maximization(model, normalize, objs, x, ActMaxConfig(steps=3, step_size=0.02))
    np.testing.assert_allclose(result.initial, [float(seen["out"][0, 7].mean()), float(logits[1, 3])],
                               rtol=1e-4, atol=1e-5)
    assert (result.final > result.initial).all()


# --------------------------------------------------------------------------------------
# Bad input: clear errors before any optimisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective, match", [
    (Term("channel", index=0, layer="conv3"), r"unknown layer 'conv3'.*conv"),
    (Term("channel", index=6, layer="conv2"), r"channel 6 out of range for layer 'conv2' with 6 channels"),
    (Term("channel", index=-1, layer="conv2"), r"channel -1 out of range"),
    (Term("logit", index=4), r"class index 4 out of range; the model has 4 classes"),
    (Term("softmax", index=0, layer="conv2"), r"reads the model output \('fc'\)"),
    (Term("neuron", index=0, layer="conv2", position=(2, 7)), r"position \(y, x\) = \(2, 7\) outside layer 'conv2'"),
    (Term("neuron", index=0, layer="flatten", position=(0, 0)), r"'flatten' has no spatial extent"),
])
def test_bad_objectives_raise_naming_the_thing(net, objective, match):
    start = images(1)
    flags = [p.requires_grad for p in net.parameters()]
    with pytest.raises(ValueError, match=match):
        am.activation_maximization(net, normalize, [[objective]], start, ActMaxConfig(steps=1))
    with pytest.raises(ValueError, match=match):
        am.evaluate_objectives(net, normalize, [[objective]], start)
    assert [p.requires_grad for p in net.parameters()] == flags


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="class", index=0), r"kind must be one of .*'class'"),
    (dict(kind="logit"), r"logit term needs index \(the class\)"),
    (dict(kind="channel", layer="conv1"), r"channel term needs index \(the channel\)"),
    (dict(kind="channel", index=0), r"channel term needs layer"),
    (dict(kind="layer", layer="conv1", index=2), r"layer term: .* takes no index"),
    (dict(kind="neuron", index=0, layer="conv1"), r"neuron term needs position"),
    (dict(kind="neuron", index=0, layer="conv1", position=(1.5, 2)), r"position must be two integers"),
    (dict(kind="channel", index=0, layer="conv1", position=(1, 2)), r"takes no position"),
    (dict(kind="logit", index=1.5), r"index must be an integer; got 1.5"),
    (dict(kind="logit", index=True), r"index must be an integer"),
    (dict(kind="logit", index=0, weight=float("nan")), r"weight must be a finite number"),
    (dict(kind="logit", index=0, weight="heavy"), r"weight must be a finite number; got 'heavy'"),
])
def test_bad_terms(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Term(**kwargs)


def test_bad_batches(net):
    with pytest.raises(ValueError, match="one objective per start image: 2 objectives, 1 start images"):
        am.activation_maximization(net, normalize, [[Term("logit", 0)]] * 2, images(1), ActMaxConfig(steps=1))
    with pytest.raises(ValueError, match="objective 0 is empty"):
        am.activation_maximization(net, normalize, [[]], images(1), ActMaxConfig(steps=1))
    with pytest.raises(ValueError, match="B × C × H × W"):
        am.activation_maximization(net, normalize, [[Term("logit", 0)]], images(1)[0], ActMaxConfig(steps=1))
    with pytest.raises(ValueError, match=r"actmax.data_mean needs 1 or 3 value\(s\)"):
        am.activation_maximization(net, normalize, [[Term("logit", 0)]], images(1),
                                   ActMaxConfig(steps=1, data_mean=(0.1, 0.2)))


@pytest.mark.parametrize("values, match", [
    (dict(optimizer="sgd"), r"actmax.optimizer must be one of \['adam', 'normalized'\]; got 'sgd'"),
    (dict(steps=-1), r"actmax.steps must be an integer ≥ 0; got -1"),
    (dict(steps=2.5), r"actmax.steps must be an integer ≥ 0; got 2.5"),
    (dict(steps="many"), r"actmax.steps must be an integer"),
    (dict(step_size=0), r"actmax.step_size must be > 0"),
    (dict(step_size=float("nan")), r"actmax.step_size must be a finite number"),
    (dict(lambda_tv=-0.1), r"actmax.lambda_tv must be ≥ 0"),
    (dict(lambda_alpha=float("inf")), r"actmax.lambda_alpha must be a finite number"),
    (dict(alpha=0), r"actmax.alpha must be > 0"),
    (dict(alpha=float("nan")), r"actmax.alpha must be a finite number"),
    (dict(beta=-2), r"actmax.beta must be > 0"),
    (dict(jitter=1.5), r"actmax.jitter must be an integer ≥ 0"),
    (dict(blur_every=0), r"actmax.blur_every must be an integer ≥ 1"),
    (dict(trace_every=0), r"actmax.trace_every must be an integer ≥ 1"),
    (dict(seed=0.5), r"actmax.seed must be an integer"),
    (dict(betas=(0.9, 1.0)), r"actmax.betas must be two numbers in \[0, 1\)"),
    (dict(betas=0.9), r"actmax.betas must be two numbers"),
    (dict(data_mean=["grey"]), r"actmax.data_mean must be None or"),
    (dict(stepz=3), r"actmax: unknown key\(s\) \['stepz'\]; valid keys are .*'steps'"),
])
def test_bad_config_values(values, match):
    with pytest.raises(ValueError, match=match):
        ActMaxConfig.from_config(values)


def test_config_from_yaml_like_dict():
    cfg = ActMaxConfig.from_config({"steps": 50.0, "betas": [0.8, 0.9], "data_mean": [0.1, 0.2, 0.3],
                                    "lambda_tv": 1, "jitter": 2})
    assert cfg.steps == 50 and isinstance(cfg.steps, int) and cfg.betas == (0.8, 0.9)
    assert cfg.data_mean == (0.1, 0.2, 0.3) and cfg.lambda_tv == 1.0 and cfg.jitter == 2
    assert ActMaxConfig.from_config(cfg.to_dict()) == cfg
    assert ActMaxConfig() == ActMaxConfig.from_config({})


# --------------------------------------------------------------------------------------
# Fooling
# --------------------------------------------------------------------------------------


def literal_fool(net, x_s: torch.Tensor, target: int, lr: float, steps: int):
    """One image, one η: x ← clip(x + η ∇ logit_target, 0, 1); flip = first k with top-1 = target."""
    x, flip = x_s.clone(), -1
    for k in range(steps + 1):
        xg = x[None].clone().requires_grad_(True)
        logits = net(normalize(xg))[0]
        if flip < 0 and int(logits.argmax()) == target:
            flip = k
        if k == steps:
            break
        (g,) = torch.autograd.grad(logits[target], xg)
        x = (x + lr * g[0]).clamp(0.0, 1.0).detach()
    return x, flip, torch.softmax(logits.detach().double(), 0)


@pytest.fixture(scope="module")
def fooling_case():
    """A conv → ReLU → linear net whose top-1 for all four images is class 0; ascending
    logit 1 flips them after a number of steps that depends on η (or never, for small η)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * H * W, 3)).eval()
    x = images(4, seed=13)
    with torch.no_grad():
        assert net(normalize(x)).argmax(dim=1).tolist() == [0, 0, 0, 0]
    return net, x, 0, 1


def test_fool_matches_literal_loop(fooling_case):
    net, x, src, target = fooling_case
    lrs, steps = [0.0, 0.002, 0.01, 0.05, 0.2], 30
    result = am.fool(net, normalize, x, src, target, lrs, steps, batch_size=3)
    n = x.shape[0]
    assert result.images.shape == (n, len(lrs), 3, H, W) and result.diff.shape == (n, len(lrs), H, W)
    for i in range(n):
        for j, lr in enumerate(lrs):
            x_f, flip, probs = literal_fool(net, x[i], target, lr, steps)
            torch.testing.assert_close(result.images[i, j], x_f, rtol=0, atol=1e-5)
            assert result.flip_step[i, j] == flip, (i, lr)
            assert result.target_confidence[i, j] == pytest.approx(float(probs[target]), abs=1e-5)
            assert result.source_confidence[i, j] == pytest.approx(float(probs[src]), abs=1e-5)
            assert result.final_pred[i, j] == int(probs.argmax())
    flips = result.flip_step
    assert (flips[:, 0] == -1).all()  # η = 0 never moves, never flips: recorded as −1
    assert (flips[:, 1:] == -1).any() and (flips > 1).any() and (flips[:, -1] >= 0).all()
    # a larger η never flips later here
    later = np.where(flips < 0, steps + 1, flips)
    assert (np.diff(later[:, 1:], axis=1) <= 0).all()


def test_fool_diff_norms_and_frame(fooling_case):
    net, x, src, target = fooling_case
    lrs = [0.0, 0.05]
    result = am.fool(net, normalize, x, src, target, lrs, 10)
    xf, xs = result.images.double().numpy(), x.double().numpy()
    n = x.shape[0]
    for i in range(n):
        for j in range(len(lrs)):
            d = xf[i, j] - xs[i]
            want = np.sqrt(sum(d[c] ** 2 for c in range(3)))
            np.testing.assert_allclose(result.diff[i, j].numpy(), want, rtol=1e-5, atol=1e-7)
            assert result.linf[i, j] == pytest.approx(np.abs(d).max(), abs=1e-7)
            assert result.l2[i, j] == pytest.approx(np.sqrt((d ** 2).sum()), rel=1e-5, abs=1e-7)
    assert float(result.diff[:, 0].abs().max()) == 0.0
    frame = result.to_frame()
    assert list(frame.columns) == ["image", "lr", "flip_step", "steps", "final_pred", "target_confidence",
                                   "source_confidence", "linf", "l2", "source_class", "target_class", "fooled"]
    assert len(frame) == n * len(lrs)
    assert frame["image"].tolist() == [i for i in range(n) for _ in lrs]
    assert frame["lr"].tolist() == lrs * n
    np.testing.assert_array_equal(frame["flip_step"], result.flip_step.reshape(-1))
    assert (frame["steps"] == 10).all() and (frame["source_class"] == src).all()
    assert (frame["target_class"] == target).all()
    np.testing.assert_array_equal(frame["fooled"], result.final_pred.reshape(-1) == target)
    assert not frame.loc[frame["lr"] == 0.0, "fooled"].any()


def test_fool_already_target_and_zero_steps(fooling_case):
    net, x, src, target = fooling_case
    r = am.fool(net, normalize, x[:2], src, src, [0.0, 0.1], 0)  # the images already are class src
    assert (r.flip_step == 0).all()
    r = am.fool(net, normalize, x[:2], src, target, [0.1], 0)
    assert (r.flip_step == -1).all() and (r.final_pred == src).all()
    torch.testing.assert_close(r.images[:, 0], x[:2], rtol=0, atol=0)
    empty = am.fool(net, normalize, x[:0], src, target, [0.1, 0.2], 3)
    assert empty.images.shape == (0, 2, 3, H, W) and len(empty.to_frame()) == 0


def test_fool_restores_model(fooling_case):
    net, x, src, target = fooling_case
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    am.fool(net, normalize, x[:1], src, target, [0.1], 3)
    assert net.training and all(p.requires_grad and p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    net.eval()


@pytest.mark.parametrize("kwargs, match", [
    (dict(target_class=4), r"target_class 4 out of range; the model has 4 classes"),
    (dict(source_class=-1), r"source_class -1 out of range"),
    (dict(source_class=[0, 1, 2]), r"source_class must be one class or one per image \(2\); got 3"),
    (dict(target_class=1.5), r"target_class must be an integer"),
    (dict(learning_rates=[]), r"learning_rates must be a non-empty"),
    (dict(learning_rates=[0.1, -0.1]), r"learning_rates .* ≥ 0"),
    (dict(steps=-1), r"steps must be an integer ≥ 0; got -1"),
    (dict(steps=2.5), r"steps must be an integer ≥ 0; got 2.5"),
    (dict(batch_size=0), r"batch_size must be an integer ≥ 1"),
    (dict(images=images(2) * 2), r"images must be in pixel space \[0, 1\]"),
    (dict(images=images(2) * math.nan), r"images must be in pixel space \[0, 1\] \(no NaN\)"),
    (dict(images=images(2)[0]), r"images must be N × C × H × W"),
])
def test_fool_bad_input(net, kwargs, match):
    args = dict(images=images(2), source_class=0, target_class=1, learning_rates=[0.1], steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        am.fool(net, normalize, **args)


def test_fool_float_steps_accepted(net):
    r = am.fool(net, normalize, images(1), 0, 1, [0.1], 2.0)  # YAML may give 2.0
    assert r.steps == 2 and r.flip_step.shape == (1, 1)
