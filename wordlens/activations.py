"""Activation cache: one HDF5 file per (model, image set, layer), model predictions, and
the per-group concept correlation matrices computed from the cache.

HDF5 layout
    dataset ``activations`` (n_images × n_features, C-order flattening of the layer's
    output), chunked in blocks of (batch rows × up to 16,384 features) so that each batch
    writes whole chunks and each feature block of the correlation step reads each chunk
    once; dataset ``image_id`` (the manifest's ids, in row order); attributes recording
    model, architecture, weights, checkpoint hash, layer and its shape, input shape,
    preprocessing, manifest hash and package versions, so a stale cache is detected
    (see :func:`check_activation_file`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from wordlens import io as wio
from wordlens.device import resolve_device
from wordlens.images import ImageSource, ManifestImages, group_rows, manifest_hash
from wordlens.layers import PIXELS, feature_extractor, graph_nodes, output_node
from wordlens.models import ModelSpec, build_model, checkpoint_sha256, resolve_preprocessing
from wordlens.stats import corr_rows

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHUNK_FEATURES = 16384
STORAGE_DTYPES = {"float32": np.float32, "float16": np.float16}


class StaleCacheError(ValueError):
    """An activation file does not match what the caller expects."""


class UnreadableActivationsError(ValueError):
    """An activation file cannot be read (truncated by a killed job, or corrupt)."""


def _unreadable(path: str | Path, err: BaseException) -> UnreadableActivationsError:
    return UnreadableActivationsError(
        f"activation file {path} is unreadable (truncated or corrupt?): remove it and rerun "
        f"[{type(err).__name__}: {err}]"
    )


@contextlib.contextmanager
def open_activations(path: str | Path, *, require_dataset: bool = True):
    """Open an activation file for reading (``h5py.File(path, "r", locking=False)``).

    A file HDF5 cannot open, or whose data cannot be read inside the ``with`` block
    (the HDF5 library raises a plain ``OSError``), raises
    :class:`UnreadableActivationsError` naming the file and saying to remove it,
    instead of h5py's traceback.  A missing file is a ``FileNotFoundError``; with
    ``require_dataset`` a file without an ``activations`` dataset is a ``ValueError``.

    Example::

        with open_activations(h5) as f:
            block = f["activations"][rows, a:b]
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"activation file {path} does not exist")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as err:
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        raise _unreadable(path, err) from err
    with f:
        try:
            if require_dataset and "activations" not in f:
                raise ValueError(f"{path} is not a wordlens activation file (no 'activations' dataset)")
            yield f
        except OSError as err:
            # h5py reports unreadable chunks and metadata as plain OSError; other
            # failures (a full disk elsewhere, a missing file) keep their type.
            if type(err) is not OSError:
                raise
            raise _unreadable(path, err) from err


def _describe(spec: ModelSpec) -> dict[str, Any]:
    # A hash of the tensors, not of the file: torch.save stamps every file differently.
    checkpoint_sha = checkpoint_sha256(spec.checkpoint) if spec.checkpoint else ""
    return {
        "model": spec.name,
        "arch": spec.arch,
        "weights": spec.weights or "",
        "checkpoint": spec.checkpoint or "",
        "checkpoint_sha256": checkpoint_sha,
        "num_classes": -1 if spec.num_classes is None else int(spec.num_classes),
        "seed": int(spec.seed),
        "arch_kwargs": json.dumps(spec.arch_kwargs, sort_keys=True),
    }


@dataclass
class ExtractionSummary:
    """What an extraction run did."""

    n_images: int
    seconds: float
    layers: list[str]
    layer_shapes: dict[str, tuple[int, ...]]

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


def extract_activations(
    spec: ModelSpec,
    source: ImageSource,
    manifest: pd.DataFrame,
    outputs: Mapping[str, str | Path],
    predictions: str | Path | None = None,
    *,
    class_ids: Sequence[str] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    storage_dtype: str = "float32",
    compression: str | None = None,
    num_workers: int = 0,
    progress: bool = True,
    model: torch.nn.Module | None = None,
) -> ExtractionSummary:
    """Run the manifest's images through the model once and cache the requested layers.

    Parameters
    ----------
    spec
        The model.
    source
        The image set the manifest was sampled from.
    manifest
        The sampling manifest (row order = HDF5 row order).
    outputs
        ``{layer: path}``: one HDF5 file per layer (``pixels`` for the preprocessed input).
    predictions
        Where to write the predictions table (Parquet), or None.
    class_ids
        The model's ordered class ids, to name predicted classes (default: indices only).
    batch_size, device, num_workers
        Inference settings (``device="auto"``: CUDA when available).
    storage_dtype
        ``float32`` (default) or ``float16``.
    compression
        HDF5 compression filter (``None``, ``"lzf"`` or ``"gzip"``).
    model
        An already built model for ``spec`` (saves rebuilding it).

    All files are written under temporary names and renamed only when every batch is
    done, so a killed job leaves nothing that looks complete.
    """
    import h5py
    from tqdm.auto import tqdm

    if not outputs and predictions is None:
        raise ValueError("nothing to extract: no layers and no predictions requested")
    if storage_dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage dtype {storage_dtype!r} is not one of {sorted(STORAGE_DTYPES)}")
    if compression not in (None, "lzf", "gzip"):
        raise ValueError(f"compression {compression!r} is not one of None, 'lzf', 'gzip'")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1; got {batch_size}")
    dev = resolve_device(device)
    pre = resolve_preprocessing(spec)
    if model is None:
        model = build_model(spec, dev)
    else:
        model = model.to(dev).eval()
    nodes = graph_nodes(model)
    valid = {n.name for n in nodes}
    unknown = [layer for layer in outputs if layer != PIXELS and layer not in valid]
    if unknown:
        raise ValueError(f"layer(s) {unknown} are not graph nodes of {spec.arch}; list them with: wordlens layers {spec.arch}")
    logits_node = output_node(nodes)
    wanted = [layer for layer in outputs if layer != PIXELS]
    if predictions is not None and logits_node not in wanted:
        wanted.append(logits_node)
    extractor = feature_extractor(model, wanted) if wanted else None

    n = len(manifest)
    mhash = manifest_hash(manifest)
    common_attrs = {
        "wordlens_format": FORMAT_VERSION,
        **_describe(spec),
        "image_set": source.name,
        "input_shape": list(pre.input_shape),
        "preprocessing": json.dumps(pre.to_dict(), sort_keys=True),
        "manifest_hash": mhash,
        "n_images": n,
        "storage_dtype": storage_dtype,
        "versions": json.dumps(wio.package_versions(), sort_keys=True),
    }
    dataset = ManifestImages(manifest, source, pre.pixel_transform())
    if dataset.pixel_shape is not None and dataset.pixel_shape != tuple(pre.input_shape):
        raise ValueError(f"image set {source.name!r}: the images in {source.root} have shape {dataset.pixel_shape}, "
                         f"but model {spec.name!r} takes {tuple(pre.input_shape)} (C, H, W)")
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size, shuffle=False, num_workers=num_workers,
        pin_memory=dev.type == "cuda",
    )
    np_dtype = STORAGE_DTYPES[storage_dtype]
    shapes: dict[str, tuple[int, ...]] = {}
    logits_rows: list[np.ndarray] = []
    image_ids = manifest["image_id"].astype(str).tolist()

    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp = {layer: stack.enter_context(wio.atomic_path(path)) for layer, path in outputs.items()}
        pred_tmp = stack.enter_context(wio.atomic_path(predictions)) if predictions is not None else None
        files: dict[str, Any] = {}
        # HDF5 writes run in a background thread, overlapping the next forward pass.
        writer = stack.enter_context(_BackgroundWriter(per_batch=len(outputs)))
        start = 0
        bar = stack.enter_context(tqdm(total=n, desc=f"extract {spec.name}", unit="img", disable=not progress))
        for pixels in loader:
            pixels = pixels.to(dev, non_blocking=True)
            with torch.inference_mode():
                inputs = pre.normalize(pixels)
                feats = extractor(inputs) if extractor is not None else {}
                values = {layer: (inputs if layer == PIXELS else feats[layer]) for layer in outputs}
                stop = start + pixels.shape[0]
                for layer, value in values.items():
                    if layer not in files:
                        shapes[layer] = tuple(int(s) for s in value.shape[1:])
                        files[layer] = _create_file(tmp[layer], n, shapes[layer], batch_size, np_dtype,
                                                    compression, {**common_attrs, "layer": layer,
                                                                  "layer_shape": list(shapes[layer])}, image_ids)
                        stack.callback(files[layer].close)
                    arr = value.reshape(value.shape[0], -1).to(torch.float32).cpu().numpy()
                    writer.put(files[layer]["activations"], start, stop, arr.astype(np_dtype, copy=False))
                if predictions is not None:
                    logits_rows.append(feats[logits_node].reshape(pixels.shape[0], -1).float().cpu().numpy())
            start = stop
            bar.update(pixels.shape[0])
        writer.finish()
        if start != n:
            raise RuntimeError(f"extraction read {start} images but the manifest has {n}")
        if pred_tmp is not None:
            predictions_table(manifest, np.concatenate(logits_rows), class_ids).to_parquet(pred_tmp, index=False)
        # Leaving the block closes every file, then renames all outputs into place.
    seconds = time.perf_counter() - t0

    log.info("extracted %d images × %d layer(s) in %.1f s", n, len(outputs), seconds)
    return ExtractionSummary(n_images=n, seconds=seconds, layers=list(outputs), layer_shapes=shapes)


class _BackgroundWriter:
    """Writes array blocks into HDF5 datasets from one background thread.

    At most ``depth`` batches of ``per_batch`` blocks wait in the queue (bounded memory).  An error in the
    writer is re-raised in the caller at the next :meth:`put` or at :meth:`finish`.
    """

    def __init__(self, per_batch: int, depth: int = 2):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth * per_batch))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wordlens-hdf5-writer", daemon=True)

    def __enter__(self) -> _BackgroundWriter:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                dset, start, stop, arr = item
                try:
                    dset[start:stop] = arr
                except BaseException as err:  # noqa: BLE001 - handed to the caller
                    self._error = err

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing activations failed: {self._error}") from self._error

    def put(self, dset: Any, start: int, stop: int, arr: np.ndarray) -> None:
        self._check()
        self._queue.put((dset, start, stop, arr))

    def finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._check()

    def __exit__(self, *exc: Any) -> None:
        self.finish() if exc[0] is None else self._abort()

    def _abort(self) -> None:
        # Drain without writing, so the thread stops before the files are closed.
        self._error = self._error or RuntimeError("aborted")
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _create_file(path: Path, n: int, shape: tuple[int, ...], batch_size: int, dtype: Any,
                 compression: str | None, attrs: dict[str, Any], image_ids: list[str]):
    import h5py

    features = int(np.prod(shape)) if shape else 1
    f = h5py.File(path, "w", locking=False)
    chunks = (max(1, min(n, batch_size)), max(1, min(features, CHUNK_FEATURES)))
    f.create_dataset("activations", shape=(n, features), dtype=dtype, chunks=chunks, compression=compression)
    f.create_dataset("image_id", data=np.array(image_ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
    for key, value in attrs.items():
        f.attrs[key] = value
    return f


def predictions_table(manifest: pd.DataFrame, logits: np.ndarray, class_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Top-1 predictions with confidence and the full logits, one row per manifest image."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    true = manifest["class_index"].to_numpy()
    table = pd.DataFrame(
        {
            "image_id": manifest["image_id"].to_numpy(),
            "row": manifest["row"].to_numpy(),
            "concept": manifest["concept"].to_numpy(),
            "group": manifest["group"].to_numpy(),
            "class_index": true,
            "pred_index": pred.astype(np.int64),
            "pred_prob": probs[np.arange(len(pred)), pred].astype(np.float64),
            "correct": pd.array(np.where(true >= 0, pred == true, pd.NA), dtype="boolean"),
            "logits": list(logits),
        }
    )
    if class_ids is not None:
        ids = list(class_ids)
        table.insert(6, "pred_concept", [ids[i] if i < len(ids) else "" for i in pred])
    return table


def read_activation_attrs(path: str | Path) -> dict[str, Any]:
    """The attributes of an activation file."""
    with open_activations(path) as f:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}


def check_activation_file(path: str | Path, **expected: Any) -> dict[str, Any]:
    """Raise :class:`StaleCacheError` if the file's attributes differ from ``expected``
    (e.g. ``manifest_hash=…, weights=…, layer=…``); return the attributes."""
    attrs = read_activation_attrs(path)
    wrong = {k: (attrs.get(k), v) for k, v in expected.items() if attrs.get(k) != v}
    if wrong:
        detail = "; ".join(f"{k}: file has {got!r}, expected {want!r}" for k, (got, want) in wrong.items())
        raise StaleCacheError(f"activation file {path} is stale ({detail}); delete it to recompute")
    return attrs


# --------------------------------------------------------------------------------------
# Correlation matrices
# --------------------------------------------------------------------------------------


class HDF5Rows:
    """Rows of a 2-D HDF5 dataset as an (m × features) array-like for :func:`corr_rows`.

    ``rows`` is a slice or a sorted array of row indices; ``obj[:, a:b]`` reads only
    those rows' columns a:b, so a wide layer is streamed in column blocks.
    """

    def __init__(self, dset: Any, rows: slice | np.ndarray):
        self.dset, self.rows = dset, rows
        n = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        self.shape = (n, dset.shape[1])

    def __getitem__(self, key):
        _, cols = key
        return self.dset[self.rows, cols]


class StackedRows:
    """The rows of two :class:`HDF5Rows` stacked (first ``a``'s, then ``b``'s) as one array-like."""

    def __init__(self, a: HDF5Rows, b: HDF5Rows):
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"test and reference activations differ in width: {a.shape[1]} vs. {b.shape[1]} features")
        self.a, self.b = a, b
        self.shape = (a.shape[0] + b.shape[0], a.shape[1])

    def __getitem__(self, key):
        return np.concatenate([self.a[key], self.b[key]])


@dataclass
class LayerCorrelation:
    """The w × w concept correlation matrix of one (model, layer, image group)."""

    corr: np.ndarray
    constant: np.ndarray
    concepts: np.ndarray
    image_ids: np.ndarray
    meta: dict[str, Any]

    def save(self, path: str | Path) -> None:
        """Write as .npz (atomically)."""
        with wio.atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, corr=self.corr, constant=self.constant, concepts=self.concepts.astype(str),
                     image_ids=self.image_ids.astype(str), meta=np.array(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path: str | Path) -> LayerCorrelation:
        with np.load(path, allow_pickle=False) as z:
            return cls(corr=z["corr"], constant=z["constant"], concepts=z["concepts"], image_ids=z["image_ids"],
                       meta=json.loads(str(z["meta"])))


def correlate_layer(
    h5_path: str | Path,
    manifest: pd.DataFrame,
    group: int,
    *,
    block_size: int | None = None,
    device: str | torch.device = "cpu",
) -> LayerCorrelation:
    """Concept × concept Pearson correlation of one image group, streamed from the cache.

    Reads the group's rows in feature blocks (aligned with the HDF5 chunks), so peak
    memory is O(w²) + O(w × block) whatever the layer size.  Constant rows are reported
    (logged and in ``constant``), not turned into NaN.
    """
    rows = group_rows(manifest, group)
    with open_activations(h5_path) as f:
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
        if attrs.get("manifest_hash") != manifest_hash(manifest):
            raise StaleCacheError(
                f"activation file {h5_path} was extracted for another manifest "
                f"(hash {attrs.get('manifest_hash')!r}); delete it to recompute"
            )
        dset = f["activations"]
        if block_size is None:
            w = rows.stop - rows.start
            budget = max(1, (64 * 2**20) // (8 * w))
            chunk = dset.chunks[1] if dset.chunks else CHUNK_FEATURES
            block_size = max(chunk, (budget // chunk) * chunk)
        corr, constant = corr_rows(HDF5Rows(dset, rows), block_size=block_size, return_constant=True, device=device)
    part = manifest.iloc[rows]
    if constant.any():
        log.warning("%s group %d: %d constant concept row(s): %s", h5_path, group, int(constant.sum()),
                    part["concept"].to_numpy()[constant][:10].tolist())
    meta = {k: attrs.get(k) for k in ("model", "arch", "weights", "layer", "image_set", "manifest_hash")}
    meta["group"] = int(group)
    meta["n_constant"] = int(constant.sum())
    return LayerCorrelation(corr=corr, constant=constant, concepts=part["concept"].to_numpy(),
                            image_ids=part["image_id"].to_numpy(), meta=meta)
