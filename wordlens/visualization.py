"""What the visualization branch shows, and of which images: its method choices.

The methods themselves are :mod:`wordlens.attribution` (feature maps, DeconvNet, guided
backpropagation, Grad-CAM), :mod:`wordlens.actmax` (activation maximization, fooling) and
:mod:`wordlens.descriptors` (network-independent image similarity); the figures are
:mod:`wordlens.gallery`.  This module says which classes, layers, channels and images
they are applied to, reads channel scores from the activation cache, and tabulates
out-of-sample predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def choose_classes(class_ids: Sequence[str], classes: Sequence[str] | None, max_classes: int) -> list[int]:
    """Indices (into ``class_ids``) of the classes to visualise: ``classes`` in the order
    given, or the first ``max_classes`` classes.

    Raises
    ------
    ValueError
        Naming the unknown class ids and a few valid ones.
    """
    ids = list(class_ids)
    if classes is None:
        return list(range(min(int(max_classes), len(ids))))
    unknown = [c for c in classes if c not in ids]
    if unknown:
        raise ValueError(f"visualization.classes: unknown class id(s) {unknown}; valid ids are e.g. {ids[:8]} "
                         f"({len(ids)} in all)")
    return [ids.index(c) for c in classes]


def spatial_layers(layers: Sequence[str], shapes: dict[str, Sequence[int]]) -> list[str]:
    """The layers whose output has spatial extent (C × H × W); ``pixels`` is not a layer here."""
    return [layer for layer in layers if layer != "pixels" and len(shapes.get(layer, ())) == 3]


def check_layer(layer: str, shapes: dict[str, Sequence[int]], what: str) -> None:
    """A layer must be known and have spatial extent (for ``what``: e.g. Grad-CAM)."""
    if layer not in shapes:
        raise ValueError(f"{what}: {layer!r} is not one of the layers {sorted(shapes)}")
    if len(shapes[layer]) != 3:
        valid = spatial_layers(list(shapes), shapes)
        raise ValueError(f"{what}: {layer!r} has output shape {tuple(shapes[layer])}, no spatial extent; "
                         f"convolutional layers (C × H × W) are {valid}")


def check_channels(channels: int | Sequence[int], layer: str, shape: Sequence[int]) -> None:
    """Explicit channel indices must exist in the layer (``channels`` may also be a count)."""
    if _is_count(channels):
        return
    n = int(shape[0])
    bad = [c for c in channels if not 0 <= int(c) < n]
    if bad:
        raise ValueError(f"visualization.channels: {bad} out of range for layer {layer!r}, which has {n} channels "
                         f"(0 … {n - 1})")


def representative_rows(manifest: pd.DataFrame, class_indices: Sequence[int], class_ids: Sequence[str],
                        n: int | None = None) -> pd.DataFrame:
    """One image per class: the class's first manifest row (group 0), for the classes in
    ``class_indices`` in that order (classes without a sampled image are skipped), at most
    ``n``.  Returns those manifest rows with a ``class_index`` column of the model's output."""
    firsts = manifest.sort_values("row").drop_duplicates("concept").set_index("concept")
    rows = [firsts.loc[class_ids[i]].to_dict() | {"concept": class_ids[i], "class_index": int(i)}
            for i in class_indices if class_ids[i] in firsts.index]
    if rows:
        frame = pd.DataFrame(rows)
    else:  # no class sampled: no rows, the same columns
        frame = manifest.head(0)[[*firsts.columns, "concept"]].assign(class_index=pd.Series(dtype=np.int64))
    return frame.head(n) if n is not None else frame


def channel_means(dset: Any, shape: Sequence[int], block_rows: int = 256) -> np.ndarray:
    """Each image's mean activation per channel (n_images × C), read from a flattened
    activation cache dataset (n_images × C·H·W) in blocks of rows (bounded memory)."""
    C = int(shape[0])
    per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if len(dset.shape) != 2:
        raise ValueError(f"the activation dataset must be n_images × width, not shape {tuple(dset.shape)}")
    n = dset.shape[0]
    if dset.shape[1] != C * per:
        raise ValueError(f"activation width {dset.shape[1]} does not match the layer shape {tuple(shape)}")
    out = np.empty((n, C), dtype=np.float64)
    for a in range(0, n, block_rows):
        block = np.asarray(dset[a:a + block_rows], dtype=np.float64)
        out[a:a + len(block)] = block.reshape(len(block), C, per).mean(axis=2)
    return out


def pick_channels(means: np.ndarray, channels: int | Sequence[int]) -> list[int]:
    """The channels to show: explicit indices as given, or the ``channels`` with the largest
    variance of their mean activation across images (ties by index; channels whose
    variance is NaN come last) — the units that tell the sampled images apart.  A count
    larger than the layer's channels gives all of them.

    Parameters
    ----------
    means : ndarray
        n_images × C channel means (:func:`channel_means`).
    channels : int or sequence of int
        How many channels, or which.

    Raises
    ------
    ValueError
        If an explicit index is outside 0 … C − 1 (naming it), or the count is below 1.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(f"means must be n_images × C, not shape {means.shape}")
    n = means.shape[1]
    if not _is_count(channels):
        chosen = [int(c) for c in channels]
        bad = [c for c in chosen if not 0 <= c < n]
        if bad:
            raise ValueError(f"channels {bad} out of range: the layer has {n} channels (0 … {n - 1})")
        return chosen
    if int(channels) < 1:
        raise ValueError(f"the number of channels to show must be at least 1, not {channels}")
    with np.errstate(invalid="ignore"):
        var = means.var(axis=0) if len(means) else np.zeros(n)
    order = np.lexsort((np.arange(n), -var))
    return [int(c) for c in order[: min(int(channels), n)]]


def _is_count(channels: Any) -> bool:
    return isinstance(channels, (int, np.integer)) and not isinstance(channels, bool)


def top_examples(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores (descending; ties by index; NaN scores last);
    all of them when there are fewer than ``k``.

    Raises
    ------
    ValueError
        If ``scores`` is not one-dimensional or ``k`` is negative.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, not shape {scores.shape}")
    if int(k) < 0:
        raise ValueError(f"k must be at least 0, not {k}")
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[: int(k)]


def score_ranks(scores: np.ndarray) -> np.ndarray:
    """Each item's rank by score: 0 for the highest, in the order of :func:`top_examples`
    (ties by index, NaN scores last)."""
    scores = np.asarray(scores, dtype=np.float64)
    rank = np.empty(len(scores), dtype=np.int64)
    rank[top_examples(scores, len(scores))] = np.arange(len(scores))
    return rank


def channel_stats(pixels: np.ndarray | Any) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images in pixel space (N × C × H × W):
    the data set's statistics for noise starts and noise images.

    Raises
    ------
    ValueError
        If the images are not N × C × H × W or there are none.
    """
    x = np.asarray(pixels, dtype=np.float64)
    if x.ndim != 4 or not x.size:
        raise ValueError(f"channel_stats needs N × C × H × W images (at least one), not shape {x.shape}")
    return x.mean(axis=(0, 2, 3)).tolist(), x.std(axis=(0, 2, 3)).tolist()


def noise_images(n: int, shape: Sequence[int], mean: Sequence[float], std: Sequence[float], seed: int) -> np.ndarray:
    """``n`` images of Gaussian noise with the data set's channel mean and std, clipped to
    [0, 1] pixels (Dai §2.5), drawn with ``default_rng(seed)``: n × C × H × W float32.

    ``mean`` and ``std`` have one value per channel, or one for all channels.

    Raises
    ------
    ValueError
        If ``shape`` is not C × H × W or ``mean`` / ``std`` have another number of channels.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be C × H × W, not {shape}")
    mean, std = np.asarray(mean, dtype=np.float64).ravel(), np.asarray(std, dtype=np.float64).ravel()
    for name, v in (("mean", mean), ("std", std)):
        if len(v) not in (1, shape[0]):
            raise ValueError(f"noise_images: {len(v)} {name} values for {shape[0]} channels")
    rng = np.random.default_rng(int(seed))
    x = rng.normal(size=(int(n), *shape)) * std[:, None, None] + mean[:, None, None]
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def prediction_frequencies(predicted: dict[str, np.ndarray], class_ids: Sequence[str]) -> pd.DataFrame:
    """How often each class is predicted, per source of images (image sets and "noise").

    Returns a tidy frame: source, class_index, class_id, count, fraction.  The fraction is
    of all the source's images, so the fractions sum to 1 per source when every prediction
    is one of ``class_ids`` (a source without images: all 0).  Predictions past the class
    list (a model with more outputs than ``class_ids``) count in no class, are left out of
    the sum, and are logged.

    Raises
    ------
    ValueError
        If a prediction is negative.
    """
    rows = []
    for source, pred in predicted.items():
        pred = np.asarray(pred, dtype=np.int64).ravel()
        if (pred < 0).any():
            raise ValueError(f"predictions of {source!r}: negative class indices {sorted(set(pred[pred < 0]))[:5]}")
        counts = np.bincount(pred, minlength=len(class_ids))[: len(class_ids)]
        outside = int(len(pred) - counts.sum())
        if outside:
            log.warning("%s: %d of %d predictions are outside the %d classes", source, outside, len(pred),
                        len(class_ids))
        total = max(len(pred), 1)
        rows += [{"source": source, "class_index": i, "class_id": class_ids[i], "count": int(c),
                  "fraction": c / total} for i, c in enumerate(counts)]
    return pd.DataFrame(rows, columns=["source", "class_index", "class_id", "count", "fraction"])


def output_bias(model: Any) -> np.ndarray | None:
    """The bias of the model's final linear layer (one value per class), or None if its last
    ``nn.Linear`` has none."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].bias is None:
        return None
    return linears[-1].bias.detach().cpu().double().numpy()


def fooling_pairs(class_indices: Sequence[int]) -> list[tuple[int, int]]:
    """(source, target) classes of the fooling experiment: each chosen class is pushed
    towards the next chosen class (the last towards the first)."""
    idx = list(class_indices)
    return [(s, idx[(i + 1) % len(idx)]) for i, s in enumerate(idx)] if len(idx) > 1 else []


def fooling_shown(learning_rates: Sequence[float], flip_steps: Sequence[int]) -> int:
    """Which learning rate a fooling panel shows: the smallest that flips the image (the
    least visible perturbation that fools the network), else the largest (the strongest
    try).  Returns its index in ``learning_rates``; a flip step of −1 means no flip."""
    order = sorted(range(len(learning_rates)), key=lambda i: float(learning_rates[i]))
    if not order:
        raise ValueError("fooling needs at least one learning rate")
    flipped = [i for i in order if int(flip_steps[i]) >= 0]
    return flipped[0] if flipped else order[-1]


def class_objectives(class_index: int, n_noise: int) -> tuple[list[str], list[list[Any]], list[str]]:
    """The activation-maximization runs of one class, optimised as one batch.

    ``n_noise`` runs of the class's pre-softmax logit from noise starts (the logit, not
    the probability, is what Simonyan et al. and Dai maximise: the probability can also
    rise by lowering the other classes), one from the class's first real image
    (Réda & Xu start from images too), and one of the softmax probability from the first
    noise start, to show the difference.

    Returns
    -------
    labels, objectives, starts
        Per run: a label, its objective (a list of :class:`wordlens.actmax.Term`), and
        its start (``"noise <k>"`` for the k-th noise start, ``"image"``).
    """
    from wordlens.actmax import Term

    if int(n_noise) < 1:
        raise ValueError(f"class_objectives needs at least one noise start (the softmax run uses it), not {n_noise}")
    labels = [f"logit, noise {k + 1}" for k in range(n_noise)] + ["logit, real image", "softmax, noise 1"]
    objectives = [[Term("logit", index=int(class_index))] for _ in range(n_noise + 1)]
    objectives.append([Term("softmax", index=int(class_index))])
    starts = [f"noise {k}" for k in range(n_noise)] + ["image", "noise 0"]
    return labels, objectives, starts


#: At most this many sampled images give the data set's channel mean and std.
STATS_IMAGES = 256


def data_stats(manifest: pd.DataFrame, source: Any, preprocessing: Any, max_images: int = STATS_IMAGES
               ) -> tuple[list[float], list[float]]:
    """The data set's channel mean and std in a model's pixel space, from the first
    ``max_images`` sampled images (manifest order): the noise starts' and noise images'
    statistics."""
    from wordlens.images import manifest_pixels

    rows = manifest.sort_values("row").head(max_images)
    return channel_stats(manifest_pixels(rows, source, preprocessing).numpy())
