"""Shared fixtures: small data generated in the real formats the loaders read."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_imagenet_tree(root: Path, wnids: list[str], per_class: int, seed: int = 0, size=(40, 52)) -> Path:
    """An ImageNet-style validation tree: root/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG."""
    rng = np.random.default_rng(seed)
    counter = 0
    for c, wnid in enumerate(wnids):
        (root / wnid).mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, size=3)
        for _ in range(per_class):
            counter += 1
            h, w = size[0] + int(rng.integers(0, 9)), size[1] + int(rng.integers(0, 9))
            arr = np.clip(base + rng.normal(0, 40, size=(h, w, 3)) + 20 * c, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / wnid / f"ILSVRC2012_val_{counter:08d}.JPEG", quality=90)
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (the MNIST format), gzip-compressed if path ends in .gz."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)


def make_fashion_mnist(root: Path, per_class: int = 6, seed: int = 0, torchvision_layout: bool = True) -> Path:
    """Fashion-MNIST IDX .gz files (train and t10k) with ``per_class`` images of each of the 10 classes."""
    rng = np.random.default_rng(seed)
    folder = root / "FashionMNIST" / "raw" if torchvision_layout else root
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
        rng.shuffle(labels)
        images = np.clip(rng.normal(0, 30, size=(len(labels), 28, 28)) + 20 * labels[:, None, None] + 30, 0, 255)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images.astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


CIFAR100_NAMES = [f"class{i:02d}" for i in range(100)]


def make_cifar100(root: Path, classes: list[int], per_class: int = 6, seed: int = 0) -> Path:
    """CIFAR-100 python pickles (root/cifar-100-python/{train,test,meta}) as distributed."""
    rng = np.random.default_rng(seed)
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        labels = np.repeat(classes, per_class)
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        entry = {
            b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
            b"batch_label": f"{split} batch".encode(),
            b"fine_labels": labels.tolist(),
            b"coarse_labels": (labels // 5).tolist(),
            b"data": data,
        }
        with open(base / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {
        b"fine_label_names": [n.encode() for n in CIFAR100_NAMES],
        b"coarse_label_names": [f"super{i}".encode() for i in range(20)],
    }
    with open(base / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return root


WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331"]


@pytest.fixture
def imagenet_tree(tmp_path: Path) -> Path:
    return make_imagenet_tree(tmp_path / "imagenet" / "val", WNIDS, per_class=6)
