"""MIM against cleverhans' PGD, a literal transcription of the TF2 loop, and its guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import mim_tf2_literal

from wordlens.attacks import AttackConfig, momentum_iterative_method, parse_norm, run_attacks

pytest.importorskip("cleverhans.torch.utils", reason="cleverhans==4.0.0 is installed by `make test`")


def _small_cnn(seed: int = 0, classes: int = 5) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, classes)
    ).double().eval()


def _inputs(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("nb_iter", [1, 2, 5])
@pytest.mark.parametrize("targeted", [False, True])
def test_decay_zero_equals_cleverhans_pgd_without_random_start(nb_iter, targeted):
    from cleverhans.torch.attacks.projected_gradient_descent import projected_gradient_descent

    model = _small_cnn().float()  # cleverhans' FGM casts inputs to float32
    x = _inputs().float()
    y = torch.tensor([1, 2, 3, 4, 0, 1]) if targeted else None
    kw = dict(eps=0.2, eps_iter=0.05, nb_iter=nb_iter, norm=np.inf, clip_min=0.0, clip_max=1.0, y=y,
              targeted=targeted)
    ours = momentum_iterative_method(model, x, decay_factor=0.0, **kw)
    pgd = projected_gradient_descent(model, x, rand_init=False, **kw)
    torch.testing.assert_close(ours, pgd, rtol=0, atol=1e-6)
    assert not torch.equal(ours, x)


@pytest.mark.parametrize("norm", [np.inf, 2])
@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_matches_literal_tf2_loop(norm, decay):
    model = _small_cnn(seed=3)
    x = _inputs(seed=4)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    eps = 0.3 if norm == np.inf else 1.5
    kw = dict(eps=eps, eps_iter=eps / 10, nb_iter=12, norm=norm, clip_min=0.0, clip_max=1.0, y=y, targeted=True)
    ours = momentum_iterative_method(model, x, decay_factor=decay, **kw)
    ref = mim_tf2_literal(model, x, decay_factor=decay, **kw)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    # momentum matters: decay 1 differs from decay 0 somewhere
    other = momentum_iterative_method(model, x, decay_factor=0.0, **kw)
    assert not torch.allclose(ours, other)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_perturbation_within_epsilon_and_clip_range(norm):
    model = _small_cnn(seed=5)
    x = _inputs(n=16, seed=6)
    x[:, :, :2] = 0.0  # pixels at the clip bounds
    x[:, :, -2:] = 1.0
    eps = 0.1 if norm == "inf" else 0.8
    adv = momentum_iterative_method(model, x, eps=eps, eps_iter=eps / 2, nb_iter=10, norm=parse_norm(norm),
                                    clip_min=0.0, clip_max=1.0)  # untargeted, large steps
    delta = (adv - x).reshape(len(x), -1)
    if norm == "inf":
        assert float(delta.abs().max()) <= eps + 1e-12
        assert float(delta.abs().max()) > eps * 0.99  # it does use the budget
    else:
        assert float(delta.norm(dim=1).max()) <= eps + 1e-9
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


def test_bad_arguments_are_named():
    model = _small_cnn()
    with pytest.raises(ValueError, match="norm"):
        momentum_iterative_method(model, _inputs(), norm=1)
    with pytest.raises(ValueError, match="clip range"):
        momentum_iterative_method(model, _inputs() * 2, clip_min=0.0, clip_max=1.0)
    with pytest.raises(ValueError, match="target labels"):
        momentum_iterative_method(model, _inputs(), targeted=True)
    with pytest.raises(ValueError, match="epsilon"):
        AttackConfig(epsilon=0)
    with pytest.raises(ValueError, match="clip_min"):
        AttackConfig(clip_min=1.0, clip_max=0.0)
    assert AttackConfig(epsilon=0.15, iterations=20).eps_iter == pytest.approx(0.0075)


def _trained_linear_model(classes: int = 4, seed: int = 0):
    """A softmax classifier trained on noisy class prototypes in [0, 1] pixel space."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(classes, 1, 8, 8, generator=g)
    labels = torch.arange(classes).repeat_interleave(50)
    images = (protos[labels] + 0.15 * torch.randn(len(labels), 1, 8, 8, generator=g)).clamp(0, 1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, classes))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model((images - 0.5) / 0.25), labels).backward()
        opt.step()
    model.eval()
    assert (model((images - 0.5) / 0.25).argmax(1) == labels).float().mean() > 0.95
    return model, images, labels


def test_targeted_attacks_reach_their_targets_and_failures_are_reported():
    model, images, labels = _trained_linear_model()
    x = images[::10]
    targets = ((labels[::10] + 1) % 4).numpy()
    cfg = AttackConfig(epsilon=0.3, iterations=20, batch_size=7)
    result = run_attacks(model, lambda p: (p - 0.5) / 0.25, x, targets, cfg, torch.device("cpu"), progress=False)
    assert result.success.mean() >= 0.9
    assert np.all(result.linf <= 0.3 + 1e-6) and result.images.shape == x.shape
    hit = result.success
    assert np.array_equal(result.pred_index[hit], targets[hit])
    assert np.all(result.pred_prob >= result.target_prob - 1e-7)
    # A tiny budget fails: reported as failures, not dropped silently.
    weak = run_attacks(model, lambda p: (p - 0.5) / 0.25, x, targets, AttackConfig(epsilon=1e-4, iterations=2),
                       torch.device("cpu"), progress=False)
    assert weak.success.sum() < len(x) // 2
    assert np.array_equal(weak.success, weak.pred_index == targets)


def test_attack_is_deterministic():
    model, images, labels = _trained_linear_model(seed=2)
    x, targets = images[:8], ((labels[:8] + 2) % 4).numpy()
    cfg = AttackConfig(epsilon=0.2, iterations=5, batch_size=3)
    a = run_attacks(model, lambda p: p, x, targets, cfg, torch.device("cpu"), progress=False)
    b = run_attacks(model, lambda p: p, x, targets, cfg, torch.device("cpu"), progress=False)
    assert torch.equal(a.images, b.images)
