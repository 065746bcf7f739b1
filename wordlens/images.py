"""Image sets and the sampling manifest.

Supported sources (``kind``):

``imagenet``
    ImageNet validation (or train) in the usual one-folder-per-wnid layout
    (``root/n01440764/ILSVRC2012_val_00000293.JPEG``).
``imagefolder``
    Any tree with one folder per class.
``cifar100``
    The CIFAR-100 python pickles (``root/cifar-100-python/{train,test,meta}``), as
    torchvision's ``CIFAR100`` reads them.
``tensor``
    Images already in a model's pixel space, stored as a torch file (``root``) holding a
    dict with an ``images`` tensor (N × C × H × W, [0, 1]); the adversarial images are
    such a set.  The manifest's ``index`` is the position in that tensor; no resizing or
    cropping is applied.
``fashion_mnist``
    The Fashion-MNIST IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``)
    in ``root/FashionMNIST/raw/`` (torchvision's layout) or directly in ``root``
    (Debian's ``dataset-fashion-mnist`` package: ``/usr/share/datasets/fashion-mnist``).

The manifest (one row per sampled image, Parquet) is what every later step reads:
``image_id, image_set, kind, split, path, index, concept, class_index, group, row``.
Rows are ordered by group, then concept, so each group is a contiguous block of rows.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import pickle
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
KINDS = ("imagenet", "imagefolder", "cifar100", "fashion_mnist", "tensor")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MANIFEST_COLUMNS = ("image_id", "image_set", "kind", "split", "path", "index", "concept", "class_index", "group", "row")


@dataclass(frozen=True)
class ImageSource:
    """An image set as named in the config."""

    name: str
    kind: str
    root: str
    split: str = "val"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"image set {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind in ("cifar100", "fashion_mnist") and self.split not in ("train", "test"):
            raise ValueError(f"image set {self.name!r}: split for {self.kind} must be 'train' or 'test'; got {self.split!r}")

    @classmethod
    def from_config(cls, name: str, cfg: dict) -> ImageSource:
        """The image set ``name`` as configured (``image_sets.<name>``: kind, root, split)."""
        return cls(name=name, kind=cfg["kind"], root=str(cfg["root"]), split=cfg.get("split") or "val")


# --------------------------------------------------------------------------------------
# Reading the sources
# --------------------------------------------------------------------------------------


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler for the CIFAR python pickles: plain containers and numpy arrays only."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"), ("builtins", "bytearray"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR pickle")


def _load_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: CIFAR-100 must be the python version "
            "(cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extracted into root)"
        )
    with open(path, "rb") as f:
        try:
            obj = _SafeUnpickler(f, encoding="latin1").load()
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{path} is not a CIFAR-100 python pickle: {err}") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a CIFAR-100 python pickle (expected a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar100(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N × 32 × 32 × 3 uint8), fine labels (N,) and the 100 fine label names."""
    base = Path(root) / "cifar-100-python"
    data = _load_pickle(base / split)
    meta = _load_pickle(base / "meta")
    for key, where in (("data", split), ("fine_labels", split)):
        if key not in data:
            raise ValueError(f"{base / where} has no {key!r} entry; is it the CIFAR-100 python pickle?")
    if "fine_label_names" not in meta:
        raise ValueError(f"{base / 'meta'} has no 'fine_label_names' entry")
    images = np.asarray(data["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(data["fine_labels"], dtype=np.int64)
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta["fine_label_names"]]
    return images, labels, names


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {tuple(dims)} but holds {data.size} bytes")
    return data.reshape(dims)


def _find_fashion_file(root: Path, stem: str) -> Path:
    for folder in (root / "FashionMNIST" / "raw", root):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root / 'FashionMNIST' / 'raw'} or {root}. "
        "Get the files with torchvision.datasets.FashionMNIST(root, download=True), or on Debian/Ubuntu "
        "from the package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)."
    )


def read_fashion_mnist(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N × 28 × 28 uint8), labels (N,) and the 10 class names."""
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find_fashion_file(Path(root), f"{prefix}-images-idx3-ubyte"))
    labels = _read_idx(_find_fashion_file(Path(root), f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST {split} files in {root} disagree: images {images.shape}, labels {labels.shape}")
    return images, labels, list(FASHION_MNIST_CLASSES)


_ARRAY_CACHE: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, list[str]]] = {}


def read_arrays(source: ImageSource) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images, labels and class names of an in-memory source (CIFAR-100, Fashion-MNIST)."""
    key = (source.kind, str(Path(source.root).resolve()), source.split)
    if key not in _ARRAY_CACHE:
        reader = read_cifar100 if source.kind == "cifar100" else read_fashion_mnist
        _ARRAY_CACHE[key] = reader(source.root, source.split)
    return _ARRAY_CACHE[key]


def read_tensor_images(path: str | Path):
    """The ``images`` tensor of a ``tensor`` image set (loaded with ``weights_only=True``)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for bad files
        raise ValueError(f"{path} is not a readable torch tensor file: {err}") from err
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"{path} must hold a dict with an 'images' tensor of shape N × C × H × W")
    return images


def listing_digest(source: ImageSource) -> str:
    """A digest of every file under the image set's root: relative path, size and
    modification time (ns), in sorted order; hidden files and folders are left out.

    The workflow passes it to the sampling step as a params value, so an added, removed
    or replaced image (or class folder) reruns what depends on the image set.  A missing
    root gives the digest of no files (the sampling step then says what is wrong).
    """
    import hashlib

    h = hashlib.sha1()
    root = Path(source.root)
    paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
    for p in paths:
        rel = p.relative_to(root) if p != root else Path(p.name)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        st = p.stat()
        h.update(f"{rel.as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def class_folders(source: ImageSource) -> list[str]:
    """The class folders of a folder-tree image set (imagenet, imagefolder), sorted by name.

    They define the classes (torchvision's ImageFolder convention) whether or not they hold
    images; :func:`list_items` lists their images.
    """
    root = Path(source.root)
    if not root.exists():
        raise FileNotFoundError(f"image set {source.name!r}: root {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"image set {source.name!r}: root {root} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"image set {source.name!r}: {root} has no class folders; expected one folder per class "
            "(for ImageNet validation: one folder per wnid, e.g. n01440764/)"
        )
    return classes


def list_items(source: ImageSource, on_error: str = "raise") -> dict[str, list[tuple[str, int]]]:
    """Every image of the source, per class id: ``{concept: [(path, index), …]}`` sorted.

    File sources give (relative path, −1); array sources give ("", index).
    """
    root = Path(source.root)
    if not root.exists():
        raise FileNotFoundError(f"image set {source.name!r}: root {root} does not exist")
    if source.kind == "tensor":
        raise ValueError(f"image set {source.name!r}: tensor image sets come with their own manifest; "
                         "they cannot be sampled")
    if source.kind in ("cifar100", "fashion_mnist"):
        _, labels, names = read_arrays(source)
        out: dict[str, list[tuple[str, int]]] = {}
        for idx, lab in enumerate(labels.tolist()):
            if not 0 <= lab < len(names):
                raise ValueError(f"image set {source.name!r}: label {lab} of image {idx} is outside 0..{len(names) - 1}")
            out.setdefault(names[lab], []).append(("", idx))
        return out
    classes = class_folders(source)
    if source.kind == "imagenet":
        bad = [c for c in classes if not re.fullmatch(r"n\d{8}", c)]
        if bad:
            raise ValueError(
                f"image set {source.name!r}: folders {bad[:5]} in {root} are not wnids (n########); "
                "ImageNet must be in the one-folder-per-wnid layout (use kind: imagefolder for other trees)"
            )
    out = {}
    for cls in classes:
        files = sorted(
            str(p.relative_to(root)) for p in (root / cls).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            msg = f"image set {source.name!r}: class folder {root / cls} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
            if on_error == "skip":
                log.warning("%s; skipped", msg)
                continue
            raise ValueError(msg)
        out[cls] = [(f, -1) for f in files]
    return out


def open_image(source: ImageSource, path: str, index: int):
    """One image as a PIL image."""
    from PIL import Image

    if source.kind in ("cifar100", "fashion_mnist"):
        images, _, _ = read_arrays(source)
        arr = images[index]
        return Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")
    full = Path(source.root) / path
    with Image.open(full) as img:
        img.load()
        return img.copy()


def _readable(source: ImageSource, path: str, index: int) -> str | None:
    """None if the image decodes, else the reason."""
    if source.kind in ("cifar100", "fashion_mnist"):
        return None
    try:
        open_image(source, path, index)
    except Exception as err:  # noqa: BLE001 - PIL raises many kinds
        return f"{type(err).__name__}: {err}"
    return None


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------


def _concept_rng(seed: int, concept: str) -> np.random.Generator:
    # Seeded per concept, so adding or removing other concepts leaves this one's images unchanged.
    return np.random.default_rng([int(seed), zlib.crc32(concept.encode("utf-8"))])


def sample_manifest(
    source: ImageSource,
    images_per_concept: int = 5,
    seed: int = 0,
    concepts: Sequence[str] | None = None,
    class_ids: Sequence[str] | None = None,
    on_error: str = "raise",
) -> pd.DataFrame:
    """Sample k distinct images per concept and assign them to k groups.

    Each group holds each concept exactly once.  The choice is deterministic given
    ``seed`` and the concept's id (independent of the other concepts).

    Parameters
    ----------
    source
        The image set.
    images_per_concept
        k, also the number of groups.
    seed
        Sampling seed.
    concepts
        Class ids to keep, in this order (default: every class of the source).
    class_ids
        The model's ordered class ids (e.g. the 1000 ImageNet wnids), used to record
        each concept's ``class_index``; default: the source's own class order.
    on_error
        ``"raise"``: a missing concept, a class with fewer than k images or an
        unreadable image is an error naming it.  ``"skip"``: such an image or class is
        skipped and logged.

    Returns
    -------
    pandas.DataFrame
        The manifest (columns :data:`MANIFEST_COLUMNS`), ordered by group then concept.
    """
    k = int(images_per_concept)
    if k < 1:
        raise ValueError(f"images_per_concept must be ≥ 1; got {images_per_concept}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}")
    items = list_items(source, on_error=on_error)
    source_order = list(items)
    if concepts is None:
        concepts = source_order
    else:
        concepts = [str(c) for c in concepts]
        missing = [c for c in concepts if c not in items]
        if missing:
            msg = f"image set {source.name!r}: {len(missing)} concept(s) have no images in {source.root}: {missing[:10]}"
            if on_error == "raise":
                raise ValueError(msg)
            log.warning("%s; skipped", msg)
            concepts = [c for c in concepts if c in items]
    order = list(class_ids) if class_ids is not None else source_order
    index_of = {c: i for i, c in enumerate(order)}

    rows = []
    kept = []
    for concept in concepts:
        candidates = items[concept]
        if len(candidates) < k:
            msg = f"image set {source.name!r}: class {concept!r} has {len(candidates)} image(s), fewer than {k}"
            if on_error == "raise":
                raise ValueError(msg)
            log.warning("%s; skipped", msg)
            continue
        chosen = []
        for j in _concept_rng(seed, concept).permutation(len(candidates)):
            path, idx = candidates[int(j)]
            problem = _readable(source, path, idx)
            if problem is not None:
                msg = f"image set {source.name!r}: unreadable image {Path(source.root) / path} ({problem})"
                if on_error == "raise":
                    raise ValueError(msg)
                log.warning("%s; skipped", msg)
                continue
            chosen.append((path, idx))
            if len(chosen) == k:
                break
        if len(chosen) < k:
            log.warning("image set %r: class %r has fewer than %d readable images; skipped", source.name, concept, k)
            continue
        kept.append(concept)
        for group, (path, idx) in enumerate(chosen):
            image_id = path if path else f"{source.split}/{idx}"
            rows.append((image_id, source.name, source.kind, source.split, path, idx, concept,
                         index_of.get(concept, -1), group))
    if not rows:
        raise ValueError(f"image set {source.name!r}: no concept has {k} usable images")
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS[:-1]))
    position = {c: i for i, c in enumerate(kept)}
    frame["_pos"] = frame["concept"].map(position)
    frame = frame.sort_values(["group", "_pos"], kind="stable").drop(columns="_pos").reset_index(drop=True)
    frame["row"] = np.arange(len(frame), dtype=np.int64)
    frame["index"] = frame["index"].astype(np.int64)
    frame["class_index"] = frame["class_index"].astype(np.int64)
    frame["group"] = frame["group"].astype(np.int64)
    return frame


def manifest_hash(manifest: pd.DataFrame) -> str:
    """SHA-256 over the manifest's identifying columns, in row order (for stale-cache checks)."""
    cols = ["image_id", "image_set", "split", "concept", "class_index", "group"]
    text = manifest[cols].to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by the sampling step, checking its columns."""
    frame = pd.read_parquet(path)
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} is not a wordlens manifest: missing column(s) {missing}")
    return frame


def group_rows(manifest: pd.DataFrame, group: int) -> slice:
    """The contiguous block of manifest rows (= HDF5 rows) of one group."""
    rows = manifest.loc[manifest["group"] == group, "row"].to_numpy()
    if rows.size == 0:
        raise ValueError(f"the manifest has no group {group}; groups are {sorted(manifest['group'].unique())}")
    if not np.array_equal(rows, np.arange(rows[0], rows[0] + rows.size)):
        raise ValueError("manifest rows of a group must be contiguous (the manifest was not written by wordlens)")
    return slice(int(rows[0]), int(rows[0] + rows.size))


class ManifestImages:
    """The manifest's images as [0, 1] pixel tensors (preprocessed, not normalised); a
    map-style dataset for ``torch.utils.data.DataLoader``."""

    def __init__(self, manifest: pd.DataFrame, source: ImageSource, transform: Any):
        self.paths = manifest["path"].tolist()
        self.indices = manifest["index"].tolist()
        self.source = source
        self.transform = transform
        self.tensor = read_tensor_images(source.root) if source.kind == "tensor" else None
        if self.tensor is not None and self.indices:
            bad = [i for i in self.indices if not 0 <= i < len(self.tensor)]
            if bad:
                raise ValueError(f"image set {source.name!r}: manifest indices {bad[:5]} are outside "
                                 f"0..{len(self.tensor) - 1} of {source.root}")

    @property
    def pixel_shape(self) -> tuple[int, ...] | None:
        """(C, H, W) of a tensor image set (None for image files)."""
        return tuple(self.tensor.shape[1:]) if self.tensor is not None else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        if self.tensor is not None:
            return self.tensor[self.indices[i]].float()
        try:
            img = open_image(self.source, self.paths[i], self.indices[i])
        except Exception as err:  # noqa: BLE001
            where = Path(self.source.root) / self.paths[i] if self.paths[i] else f"index {self.indices[i]}"
            raise ValueError(f"image set {self.source.name!r}: cannot read {where}: {err}") from err
        return self.transform(img)



def manifest_pixels(rows: pd.DataFrame, source: ImageSource, preprocessing: Any):
    """The images of manifest rows in a model's pixel space: N × C × H × W in [0, 1]
    (``preprocessing`` is a :class:`wordlens.models.Preprocessing`)."""
    import torch

    images = ManifestImages(rows.reset_index(drop=True), source, preprocessing.pixel_transform())
    if len(images) == 0:
        return torch.zeros((0, *preprocessing.input_shape))
    return torch.stack([images[i] for i in range(len(images))])
