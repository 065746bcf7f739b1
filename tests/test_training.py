"""The trainer: loss goes down, checkpoints reload exactly, runs are deterministic,
permuted labels, early stopping, and obtaining Fashion-MNIST."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_fashion_mnist

from wordlens import models, training
from wordlens.images import ImageSource
from wordlens.training import TrainConfig

SPEC = models.ModelSpec(
    name="tiny", arch="fractalnet", num_classes=10,
    arch_kwargs={"n_blocks": 3, "n_columns": 2, "channels": [8, 16, 32], "dropout": [0.0, 0.1, 0.1],
                 "in_channels": 1},
    preprocessing={"channels": 1, "mean": [0.5], "std": [0.5]},
)


@pytest.fixture
def fashion(tmp_path):
    root = make_fashion_mnist(tmp_path / "fm", per_class=20)
    return (ImageSource("fm_train", "fashion_mnist", str(root), "train"),
            ImageSource("fm_test", "fashion_mnist", str(root), "test"))


def run(tmp_path, fashion, name="run", **cfg):
    config = TrainConfig(**{"epochs": 4, "batch_size": 20, "lr": 0.05, "checkpoint_every": 2, **cfg})
    result = training.train(SPEC, *fashion, config, tmp_path / name / "ck", tmp_path / name / "log.parquet",
                            device="cpu", progress=False)
    return result, config


def test_training_reduces_the_loss_and_writes_checkpoints_and_log(tmp_path, fashion):
    result, _ = run(tmp_path, fashion)
    log = pd.read_parquet(tmp_path / "run" / "log.parquet")
    assert list(log.columns) == list(training.LOG_COLUMNS) and log["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert log["train_loss"].iloc[-1] < log["train_loss"].iloc[1] < log["train_loss"].iloc[0] * 1.5
    assert sorted(result.checkpoints) == [0, 2, 4]
    meta = json.loads((tmp_path / "run" / "ck" / "epoch-0004.pt.json").read_text())
    assert meta["epoch"] == 4 and meta["arch"] == "fractalnet" and meta["num_classes"] == 10
    assert meta["test_error"] == pytest.approx(log["test_error"].iloc[-1])
    assert meta["train_config"]["lr_milestones"] == [0.5, 0.75, 0.875, 0.9375]
    assert log["lr"].tolist()[1:] == pytest.approx([0.05, 0.05, 0.005, 0.0005])  # drops after epochs 2 and 3


def test_checkpoints_reload_to_identical_outputs(tmp_path, fashion):
    captured = {}
    original_save = training._save_checkpoint

    def save_and_probe(model, path, meta):
        model.eval()
        with torch.no_grad():
            captured[meta["epoch"]] = model(torch.linspace(-1, 1, 2 * 32 * 32).reshape(2, 1, 32, 32))
        original_save(model, path, meta)

    training._save_checkpoint = save_and_probe
    try:
        result, _ = run(tmp_path, fashion)
    finally:
        training._save_checkpoint = original_save
    for epoch, path in result.checkpoints.items():
        spec = training.checkpoint_spec(path)
        reloaded = models.build_model(spec)
        with torch.no_grad():
            out = reloaded(torch.linspace(-1, 1, 2 * 32 * 32).reshape(2, 1, 32, 32))
        assert torch.equal(out, captured[epoch]), epoch


def test_training_is_deterministic_on_cpu(tmp_path, fashion):
    a, _ = run(tmp_path, fashion, name="a", epochs=2)
    b, _ = run(tmp_path, fashion, name="b", epochs=2)
    sa, sb = torch.load(a.checkpoints[2], weights_only=True), torch.load(b.checkpoints[2], weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    pd.testing.assert_frame_equal(a.log.drop(columns="seconds"), b.log.drop(columns="seconds"))


def test_permuted_labels_are_deterministic_and_per_split(fashion):
    labels = np.repeat(np.arange(10), 20)
    p1 = training.permuted_labels(labels, seed=3, split="train")
    assert np.array_equal(p1, training.permuted_labels(labels, seed=3, split="train"))
    assert not np.array_equal(p1, training.permuted_labels(labels, seed=4, split="train"))
    assert not np.array_equal(p1, training.permuted_labels(labels, seed=3, split="test"))
    assert np.array_equal(np.sort(p1), labels)  # same class frequencies
    assert (p1 != labels).mean() > 0.5
    pre = models.resolve_preprocessing(SPEC)
    train_set = training.LabelledImages(fashion[0], pre, permute=True, seed=3)
    test_set = training.LabelledImages(fashion[1], pre, permute=True, seed=3)
    assert np.array_equal(train_set.labels, training.permuted_labels(train_set.true_labels, 3, "train"))
    assert np.array_equal(test_set.labels, training.permuted_labels(test_set.true_labels, 3, "test"))
    again = training.LabelledImages(fashion[0], pre, permute=True, seed=3)
    assert np.array_equal(again.labels, train_set.labels)


def test_target_accuracy_stops_early_and_fills_the_schedule(tmp_path, fashion):
    result, _ = run(tmp_path, fashion, epochs=6, target_train_accuracy=0.01)
    assert result.stopped_at_epoch == 1
    assert sorted(result.checkpoints) == [0, 2, 4, 6]
    meta = json.loads((tmp_path / "run" / "ck" / "epoch-0006.pt.json").read_text())
    assert meta["stopped_at_epoch"] == 1
    assert result.log["epoch"].tolist() == [0, 1]


def test_subsets_and_config_validation(fashion):
    pre = models.resolve_preprocessing(SPEC)
    subset = training.LabelledImages(fashion[0], pre, limit=50, seed=0)
    assert len(subset) == 50 and np.bincount(subset.true_labels).tolist() == [5] * 10
    assert TrainConfig(epochs=400).milestone_epochs() == [200, 300, 350, 375]
    assert training.checkpoint_epochs(12, 5) == [0, 5, 10, 12]
    with pytest.raises(ValueError, match="unknown key"):
        TrainConfig.from_config({"epoch": 3})
    with pytest.raises(ValueError, match="lr_milestones"):
        TrainConfig(lr_milestones=(1.5,))


def test_fashion_mnist_from_a_local_debian_copy(tmp_path, monkeypatch):
    debian = make_fashion_mnist(tmp_path / "usr-share", per_class=2, torchvision_layout=False)
    monkeypatch.setattr(training, "DEBIAN_FASHION_MNIST", debian)
    root = training.obtain_fashion_mnist(tmp_path / "data")
    names = sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir())
    # the .gz files and an uncompressed copy of each (later reads skip gunzip)
    assert names == sorted(training.FASHION_MNIST_FILES + tuple(f[:-3] for f in training.FASHION_MNIST_FILES))
    from wordlens.images import read_fashion_mnist

    images, labels, _ = read_fashion_mnist(root, "train")
    assert images.shape == (20, 28, 28) and labels.tolist().count(3) == 2


def test_fashion_mnist_missing_everywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setattr(training.shutil, "which", lambda name: None)  # no apt-get here

    class Offline:
        def __init__(self, *args, **kwargs):
            raise OSError("no network")

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist.*zalandoresearch"):
        training.obtain_fashion_mnist(tmp_path / "data")


def test_folder_labels_follow_the_class_folders_even_with_an_empty_one(tmp_path):
    from conftest import make_imagenet_tree

    from wordlens.images import ImageSource
    from wordlens.models import Preprocessing

    make_imagenet_tree(tmp_path / "train", ["ant", "bee", "cat"], per_class=2, size=(20, 20))
    make_imagenet_tree(tmp_path / "test", ["ant", "bee", "cat"], per_class=2, size=(20, 20))
    for f in (tmp_path / "test" / "bee").iterdir():
        f.unlink()  # the test tree has no bee images
    pre = Preprocessing(resize=None, crop=16)
    train = training.LabelledImages(ImageSource("train", "imagefolder", str(tmp_path / "train")), pre)
    test = training.LabelledImages(ImageSource("test", "imagefolder", str(tmp_path / "test")), pre)
    assert train.class_names == test.class_names == ["ant", "bee", "cat"]
    assert train.true_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert test.true_labels.tolist() == [0, 0, 2, 2]  # cat stays class 2
