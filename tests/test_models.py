"""Pretrained torchvision weights: found in torch.hub's cache, hash-checked, loaded with
``weights_only=True`` (files are generated here, never downloaded)."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
import torchvision

from wordlens import models


class _RunsCode:
    """Unpickling this calls os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME; any attempt to download fails (and is recorded)."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # not pinned by an earlier set_dir
    downloads = []

    def offline(*args, **kwargs):
        downloads.append(args)
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert torch.hub.get_dir() == str(home / "hub")
    return home, downloads


@pytest.fixture
def torch_load_calls(monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def place_weights(home, monkeypatch, obj, prefix_of=None, name="resnet18"):
    """torch.save ``obj`` where torch.hub keeps resnet18 IMAGENET1K_V1, named with its hash prefix.

    The published file is ``resnet18-f37072fd.pth``; our random-init file has another
    hash, so the weights entry's URL is pointed at ``resnet18-<our prefix>.pth``.
    ``prefix_of`` overrides the prefix in the name (a wrong hash).
    """
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.pth"
    torch.save(obj, tmp)
    prefix = prefix_of or hashlib.sha256(tmp.read_bytes()).hexdigest()[:10]
    target = folder / f"{name}-{prefix}.pth"
    tmp.rename(target)
    w = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    monkeypatch.setattr(w.value, "url", f"https://download.pytorch.org/models/{target.name}")
    return target


def test_weights_file_is_where_torchvision_keeps_it(torch_home):
    home, _ = torch_home
    w = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert models.torchvision_weights_file(w) == home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_pretrained_weights_load_with_weights_only(torch_home, monkeypatch, torch_load_calls):
    home, downloads = torch_home
    torch.manual_seed(5)
    state = torchvision.models.resnet18(weights=None).state_dict()  # 1000 classes, like IMAGENET1K_V1
    place_weights(home, monkeypatch, state)
    model = models.build_model(models.ModelSpec(name="r", arch="resnet18", weights="IMAGENET1K_V1"))
    got = model.state_dict()
    assert set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key
    assert torch_load_calls and all(torch_load_calls), "every torch.load must use weights_only=True"
    assert not downloads
    loaded = models.load_torchvision_weights(torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_pretrained_weights_with_a_wrong_hash_are_refused(torch_home, monkeypatch):
    home, downloads = torch_home
    state = torchvision.models.resnet18(weights=None).state_dict()
    target = place_weights(home, monkeypatch, state, prefix_of="0123abcd")
    with pytest.raises(ValueError, match=rf"{target.name}.*sha256.*0123abcd"):
        models.build_model(models.ModelSpec(name="r", arch="resnet18", weights="IMAGENET1K_V1"))
    assert not downloads


def test_pretrained_weights_that_would_run_code_are_refused(torch_home, monkeypatch, tmp_path):
    home, _ = torch_home
    marker = tmp_path / "code-ran"
    target = place_weights(home, monkeypatch, {"fc.weight": _RunsCode(f"touch {marker}")})
    with pytest.raises(ValueError, match=rf"{target.name}.*weights_only=True"):
        models.build_model(models.ModelSpec(name="r", arch="resnet18", weights="IMAGENET1K_V1"))
    assert not marker.exists()


def test_missing_pretrained_weights_name_the_expected_path(torch_home):
    home, _ = torch_home
    expected = home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(RuntimeError, match=rf"{expected}.*copy it"):
        models.build_model(models.ModelSpec(name="r", arch="resnet18", weights="IMAGENET1K_V1"))
    with pytest.raises(RuntimeError, match=rf"{expected}"):
        models.load_torchvision_weights(torchvision.models.ResNet18_Weights.IMAGENET1K_V1, download=False)
