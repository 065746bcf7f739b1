"""Training a classifier (FractalNet in "Words as a window") with periodic checkpoints.

SGD with momentum 0.9, batch 100, learning rate 0.02 divided by 10 at 50 %, 75 %,
87.5 % and 93.75 % of the epochs (the FractalNet paper's 200/300/350/375 of 400),
all configurable.  Seeded and deterministic on CPU.  Writes a checkpoint (state dict +
JSON metadata) every ``checkpoint_every`` epochs, at epoch 0 (the initial weights) and
at the end, and a per-epoch log of train/test loss and error (Parquet).  In
permuted-labels mode the labels of the training and the test set are shuffled once
with the run's seed (Zhang et al. 2017, "rethinking generalization").
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from wordlens import io as wio
from wordlens.device import resolve_device
from wordlens.images import ImageSource, class_folders, list_items, open_image, read_arrays
from wordlens.models import ModelSpec, Preprocessing, build_model, resolve_preprocessing
from wordlens.naming import FASHION_MNIST_FILES
from wordlens.naming import checkpoint_epochs, checkpoint_name

log = logging.getLogger(__name__)

LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_error", "test_loss", "test_error", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (see the module docstring for the defaults' origin)."""

    epochs: int = 400
    batch_size: int = 100
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = (0.5, 0.75, 0.875, 0.9375)
    lr_gamma: float = 0.1
    checkpoint_every: int = 5
    seed: int = 0
    permute_labels: bool = False
    target_train_accuracy: float | None = None
    augment: bool = False
    max_train_images: int | None = None
    max_test_images: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("epochs, batch_size and checkpoint_every must be positive integers")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive; got {self.lr}")
        if any(not 0 < f <= 1 for f in self.lr_milestones):
            raise ValueError(f"lr_milestones are fractions of the epochs in (0, 1]; got {self.lr_milestones}")
        if self.target_train_accuracy is not None and not 0 < self.target_train_accuracy <= 1:
            raise ValueError(f"target_train_accuracy must be in (0, 1]; got {self.target_train_accuracy}")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"training: unknown key(s) {sorted(unknown)}; valid keys are {sorted(known)}")
        values = dict(cfg)
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        return cls(**values)

    def milestone_epochs(self) -> list[int]:
        """Epochs after which the learning rate drops (e.g. 200, 300, 350, 375 of 400)."""
        return sorted({max(1, round(f * self.epochs)) for f in self.lr_milestones})


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def permuted_labels(labels: np.ndarray, seed: int, split: str) -> np.ndarray:
    """The labels shuffled across images with a permutation fixed by (seed, split).

    The class frequencies stay the same; the same seed gives the same labels in every
    run, and the training and test splits are shuffled independently of each other.
    """
    split_id = {"train": 1, "test": 2, "val": 3}.get(split, 4)
    perm = np.random.default_rng([int(seed), 7919, split_id]).permutation(len(labels))
    return np.asarray(labels)[perm]


def _stratified_subset(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = max(1, limit // len(classes))
    rng = np.random.default_rng([int(seed), 104729])
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(keep))


class LabelledImages(torch.utils.data.Dataset):
    """(normalised image, label) pairs of an image set, preprocessed like the analysis."""

    def __init__(self, source: ImageSource, pre: Preprocessing, *, permute: bool = False, seed: int = 0,
                 limit: int | None = None):
        self.source, self.pre = source, pre
        transform = pre.pixel_transform()
        if source.kind in ("cifar100", "fashion_mnist"):
            images, labels, names = read_arrays(source)
            self.items = [("", int(i)) for i in range(len(labels))]
        else:
            # Labels index the class folders (torchvision's ImageFolder order, as the analysis's
            # class ids), so a train and a test tree with the same folders agree even if one
            # of them has a folder without images.
            names = class_folders(source)
            per_class = list_items(source, on_error="skip")
            self.items, labs = [], []
            for k, concept in enumerate(names):
                self.items += per_class.get(concept, [])
                labs += [k] * len(per_class.get(concept, []))
            labels = np.asarray(labs, dtype=np.int64)
        self.class_names = list(names)
        keep = _stratified_subset(labels, limit, seed)
        self.items = [self.items[i] for i in keep]
        labels = np.asarray(labels)[keep]
        self.true_labels = labels.astype(np.int64)
        self.labels = permuted_labels(labels, seed, source.split) if permute else self.true_labels
        self.transform = transform
        self._cache: torch.Tensor | None = None
        if source.kind in ("cifar100", "fashion_mnist"):  # small images: preprocess once
            self._cache = torch.stack([self._load(i) for i in range(len(self.items))])

    def _load(self, i: int) -> torch.Tensor:
        path, index = self.items[i]
        return self.transform(open_image(self.source, path, index))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        pixels = self._cache[i] if self._cache is not None else self._load(i)
        return self.pre.normalize(pixels[None])[0], int(self.labels[i])


def _augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flips and translations by up to ``pad`` pixels (zero padding)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    log: pd.DataFrame
    checkpoints: dict[int, Path] = field(default_factory=dict)
    stopped_at_epoch: int | None = None


def _evaluate(model: nn.Module, loader, device: torch.device) -> tuple[float, float]:
    model.eval()
    loss_sum, wrong, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss_sum += float(nn.functional.cross_entropy(out, y, reduction="sum"))
            wrong += int((out.argmax(1) != y).sum())
            n += len(y)
    return loss_sum / max(n, 1), wrong / max(n, 1)


def _save_checkpoint(model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
    with wio.atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    wio.write_json(Path(str(path) + ".json"), meta)


def train(
    spec: ModelSpec,
    train_source: ImageSource,
    test_source: ImageSource,
    config: TrainConfig,
    checkpoint_dir: str | Path,
    log_path: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``spec`` (from its initial weights) and write checkpoints and the log.

    Checkpoints are ``checkpoint_dir/epoch-NNNN.pt`` (+ ``.json``) for every epoch of
    :func:`checkpoint_epochs`.  If ``target_train_accuracy`` is reached early, training
    stops and the remaining scheduled checkpoints hold the final weights (their metadata
    say ``stopped_at_epoch``), so every expected file exists.
    """
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)
    pre = resolve_preprocessing(spec)
    train_set = LabelledImages(train_source, pre, permute=config.permute_labels, seed=config.seed,
                               limit=config.max_train_images)
    test_set = LabelledImages(test_source, pre, permute=config.permute_labels, seed=config.seed,
                              limit=config.max_test_images)
    model = build_model(spec, dev)
    model.requires_grad_(True)
    n_out = model(torch.zeros((1, *pre.input_shape), device=dev)).shape[1]
    if n_out < len(train_set.class_names):
        raise ValueError(f"model {spec.name!r} has {n_out} outputs but {train_source.name!r} has "
                         f"{len(train_set.class_names)} classes; set num_classes")
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.milestone_epochs(),
                                                     gamma=config.lr_gamma)
    loader_gen = torch.Generator().manual_seed(config.seed)
    aug_gen = torch.Generator().manual_seed(config.seed + 1)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                                               generator=loader_gen, num_workers=config.num_workers)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=max(config.batch_size, 256), shuffle=False,
                                              num_workers=config.num_workers)
    checkpoint_dir = Path(checkpoint_dir)
    schedule = checkpoint_epochs(config.epochs, config.checkpoint_every)
    base_meta = {
        "arch": spec.arch, "arch_kwargs": spec.arch_kwargs, "num_classes": spec.num_classes,
        "preprocessing": pre.to_dict(), "model_seed": spec.seed, "train_config": asdict(config),
        "train_set": train_source.name, "test_set": test_source.name, "class_names": train_set.class_names,
        "n_train": len(train_set), "n_test": len(test_set), "versions": wio.package_versions(),
    }
    result = TrainResult(log=pd.DataFrame(columns=list(LOG_COLUMNS)))
    rows: list[dict[str, Any]] = []

    def save(epoch: int, row: dict[str, Any] | None, stopped: int | None = None) -> None:
        path = checkpoint_dir / checkpoint_name(epoch)
        meta = {**base_meta, "epoch": epoch, "stopped_at_epoch": stopped, **(row or {})}
        _save_checkpoint(model, path, meta)
        result.checkpoints[epoch] = path

    train_eval = torch.utils.data.DataLoader(train_set, batch_size=max(config.batch_size, 256), shuffle=False,
                                             num_workers=config.num_workers)
    train_loss, train_error = _evaluate(model, train_eval, dev)
    test_loss, test_error = _evaluate(model, test_loader, dev)
    row0 = {"epoch": 0, "lr": config.lr, "train_loss": train_loss, "train_error": train_error,
            "test_loss": test_loss, "test_error": test_error, "seconds": 0.0}
    rows.append(row0)
    save(0, row0)
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum, wrong, seen = 0.0, 0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not progress,
                   leave=False)
        for x, y in bar:
            x, y = x.to(dev), y.to(dev)
            if config.augment:
                x = _augment(x.cpu(), aug_gen).to(dev)
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = nn.functional.cross_entropy(out, y)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"training diverged at epoch {epoch} (loss {value}); lower lr")
            loss.backward()
            optimizer.step()
            loss_sum += value * len(y)
            wrong += int((out.argmax(1) != y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{1 - wrong / seen:.3f}")
        bar.close()
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        test_loss, test_error = _evaluate(model, test_loader, dev)
        row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / seen, "train_error": wrong / seen,
               "test_loss": test_loss, "test_error": test_error, "seconds": time.perf_counter() - t0}
        rows.append(row)
        log.info("epoch %d: train loss %.4f error %.4f, test loss %.4f error %.4f", epoch, row["train_loss"],
                 row["train_error"], test_loss, test_error)
        if on_epoch is not None:
            on_epoch(row)
        reached = (config.target_train_accuracy is not None
                   and 1 - row["train_error"] >= config.target_train_accuracy)
        if epoch in schedule:
            save(epoch, row)
        if reached and epoch < config.epochs:
            log.info("training accuracy %.4f reached the target at epoch %d; stopping", 1 - row["train_error"], epoch)
            result.stopped_at_epoch = epoch
            for later in (e for e in schedule if e > epoch):
                save(later, row, stopped=epoch)
            break
    result.log = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    result.log.attrs["stopped_at_epoch"] = result.stopped_at_epoch
    wio.write_parquet(result.log, log_path)
    return result


def checkpoint_spec(path: str | Path, name: str | None = None, **overrides: Any) -> ModelSpec:
    """The :class:`ModelSpec` of a checkpoint written by :func:`train` (from its metadata)."""
    meta_path = Path(str(path) + ".json")
    if not meta_path.is_file():
        raise FileNotFoundError(f"checkpoint metadata {meta_path} does not exist")
    meta = json.loads(meta_path.read_text())
    pre = meta.get("preprocessing", {})
    return ModelSpec(name=name or Path(path).stem, arch=meta["arch"], checkpoint=str(path),
                     num_classes=meta.get("num_classes"), arch_kwargs=meta.get("arch_kwargs", {}),
                     preprocessing={**pre, **overrides.pop("preprocessing", {})}, **overrides)


# --------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy under a temporary name, then rename: a killed copy never looks complete."""
    with wio.atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _has_fashion_mnist(folder: Path) -> bool:
    return all((folder / f).is_file() or (folder / f[:-3]).is_file() for f in FASHION_MNIST_FILES)


def _decompress(raw: Path) -> None:
    """Keep an uncompressed copy of each .gz file (as torchvision does): later reads skip gunzip."""
    import gzip

    for f in FASHION_MNIST_FILES:
        target = raw / f[:-3]
        if (raw / f).is_file() and not target.is_file():
            with gzip.open(raw / f, "rb") as src, wio.atomic_path(target) as tmp:
                tmp.write_bytes(src.read())


def obtain_fashion_mnist(root: str | Path) -> Path:
    """Make sure ``root/FashionMNIST/raw`` holds the four Fashion-MNIST files; return ``root``.

    The files are also kept uncompressed beside the .gz files.  In order: files already there; a local copy from Debian/Ubuntu's
    ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``); that
    package fetched with ``apt-get download`` and unpacked with ``dpkg -x`` (no root
    needed); torchvision's download; else a clear error saying how to get them.
    """
    root = Path(root)
    raw = root / "FashionMNIST" / "raw"
    if _has_fashion_mnist(raw) or _has_fashion_mnist(root):
        return root
    raw.mkdir(parents=True, exist_ok=True)
    if _has_fashion_mnist(DEBIAN_FASHION_MNIST):
        for f in FASHION_MNIST_FILES:
            _copy_atomic(DEBIAN_FASHION_MNIST / f, raw / f)
        _decompress(raw)
        log.info("Fashion-MNIST copied from %s", DEBIAN_FASHION_MNIST)
        return root
    attempts = []
    if shutil.which("apt-get") and shutil.which("dpkg"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=tmp, check=True,
                               capture_output=True, text=True, timeout=300)
                debs = sorted(Path(tmp).glob("dataset-fashion-mnist_*.deb"))
                subprocess.run(["dpkg", "-x", str(debs[-1]), str(Path(tmp) / "x")], check=True,
                               capture_output=True, text=True, timeout=300)
                unpacked = Path(tmp) / "x" / DEBIAN_FASHION_MNIST.relative_to("/")
                if _has_fashion_mnist(unpacked):
                    for f in FASHION_MNIST_FILES:
                        _copy_atomic(unpacked / f, raw / f)
                    _decompress(raw)
                    log.info("Fashion-MNIST unpacked from Debian's dataset-fashion-mnist package")
                    return root
                attempts.append("apt-get download: the package did not hold the files")
            except (subprocess.SubprocessError, OSError, IndexError) as err:
                detail = getattr(err, "stderr", "") or str(err)
                attempts.append(f"apt-get download dataset-fashion-mnist: {detail.strip()[:200]}")
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
        if _has_fashion_mnist(raw):
            return root
        attempts.append("torchvision download: files missing afterwards")
    except Exception as err:  # noqa: BLE001 - any download failure
        attempts.append(f"torchvision download: {type(err).__name__}: {err}")
    raise FileNotFoundError(
        f"Fashion-MNIST is not in {raw} and could not be obtained ({'; '.join(attempts)}). Install Debian/Ubuntu's "
        "package dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist), or download the four "
        f"*-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist into {raw}."
    )
