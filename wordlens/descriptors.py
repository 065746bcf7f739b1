"""A network-independent score of how close generated images are to a class's real images.

Réda & Xu measured their activation-maximization images against the real images of the
class with SIFT descriptors (Lowe) and a bag of visual words (Sivic & Zisserman).  This
module does the same, with choices fitted to small images:

* **Dense SIFT.**  A 32 × 32 image (Fashion-MNIST, CIFAR) gives SIFT's detector a handful
  of keypoints, often none, and a generated image gives different ones than a real image
  would; a comparison then measures where the detector fired, not what the image looks
  like.  The descriptors are therefore computed (``cv2.SIFT_create().compute``) on a
  regular grid of keypoints: every ``step`` = 8 pixels, each describing a ``patch`` = 16
  pixel neighbourhood, upright (angle 0: the data sets are aligned, and a rotated
  stripe is a different pattern).  Images are first converted to 8-bit grey (ITU-R
  BT.601 weights for RGB) and small ones upscaled (bicubic) so that their shorter side
  is ``min_size`` = 64 pixels, which gives 7 × 7 = 49 overlapping descriptors per
  image; larger images keep their size and get more descriptors.  Flat patches
  (grey-level standard deviation below ``MIN_CONTRAST`` = 4 of 255) are not described:
  SIFT normalises each descriptor to unit length, so the faint ripple of a nearly
  uniform patch would become a full-strength "edge", and the flat background of the
  real images would make a featureless generated image look like the class.  Only
  structure is compared; an image with none scores 0.
* **Vocabulary.**  k-means (``cv2.kmeans``, k-means++ starts, seeded with
  ``cv2.setRNGSeed``, 3 attempts) on the descriptors of the *reference* images only,
  so the visual words are those of the real class and a generated image is described in
  their terms.  The default ``vocabulary_size`` = 32 is small on purpose: with about 49
  descriptors per image, a few hundred words would leave most bins of a histogram empty
  and make two images of the same class look unrelated by chance; 32 words still tell
  flat regions, edges of each orientation, corners and textures apart.  It is capped at
  the number of distinct reference descriptors.
* **Bag of words.**  Each descriptor counts for its nearest word (Euclidean); the counts
  are L1-normalised, so images with different numbers of descriptors compare.
* **Score.**  The cosine similarity of an image's histogram with the mean histogram of
  the references.  Histograms are non-negative, so the score lies in [0, 1]: 1 when the
  image uses the words in the proportions the class does, 0 when it shares none.  An
  image without any descriptor (an empty histogram) scores 0.

The result depends only on the pixels (no network), so it can rank activation-
maximization images of different networks, starts or epochs on one scale.  It is
deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["to_grey_uint8", "dense_keypoints", "dense_sift", "fit_vocabulary", "bag_of_words", "class_similarity"]

STEP = 8
PATCH = 16
MIN_SIZE = 64
#: Grey-level standard deviation (0–255) below which a patch is flat and not described.
MIN_CONTRAST = 4.0


def _cv2():
    import cv2

    return cv2


def _batch(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:  # one C × H × W image
        x = x[None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be N × C × H × W with C = 1 or 3, not shape {x.shape}")
    return x


def to_grey_uint8(images: np.ndarray, min_size: int = MIN_SIZE) -> list[np.ndarray]:
    """Images in [0, 1] (N × C × H × W, C = 1 or 3) → 8-bit grey H' × W' arrays, upscaled
    (bicubic) so that the shorter side is at least ``min_size``.

    NaN counts as 0; values are clipped to [0, 1] first.
    """
    cv2 = _cv2()
    x = np.clip(np.nan_to_num(_batch(images), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if x.shape[1] == 3:
        grey = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), x, axes=([0], [1]))
    else:
        grey = x[:, 0]
    out = []
    for g in grey:
        h, w = g.shape
        scale = max(1.0, min_size / min(h, w))
        if scale > 1.0:
            g = cv2.resize(g, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_CUBIC)
        out.append(np.clip(np.rint(g * 255.0), 0, 255).astype(np.uint8))
    return out


def dense_keypoints(shape: Sequence[int], step: int = STEP, patch: int = PATCH) -> list:
    """A regular grid of upright ``cv2.KeyPoint`` s over an image of ``shape`` (H, W):
    centres every ``step`` pixels, at least ``patch / 2`` from the border, each of size
    ``patch``."""
    cv2 = _cv2()
    h, w = int(shape[0]), int(shape[1])
    half = patch / 2
    ys = np.arange(half, h - half + 1e-9, step)
    xs = np.arange(half, w - half + 1e-9, step)
    if not len(ys):
        ys = np.array([h / 2])
    if not len(xs):
        xs = np.array([w / 2])
    return [cv2.KeyPoint(float(x), float(y), float(patch), 0.0) for y in ys for x in xs]


def _textured(grey: np.ndarray, keypoints: list, patch: int, min_contrast: float) -> list:
    """The keypoints whose ``patch`` × ``patch`` neighbourhood has a grey-level standard
    deviation of at least ``min_contrast`` (SIFT normalises every descriptor to unit
    length, so a flat patch with a faint ripple would otherwise look like a strong edge)."""
    half = patch // 2
    keep = []
    for kp in keypoints:
        x, y = int(round(kp.pt[0])), int(round(kp.pt[1]))
        region = grey[max(y - half, 0): y + half, max(x - half, 0): x + half]
        if region.size and float(region.std()) >= min_contrast:
            keep.append(kp)
    return keep


def dense_sift(images: np.ndarray, step: int = STEP, patch: int = PATCH, min_size: int = MIN_SIZE,
               min_contrast: float = MIN_CONTRAST) -> list[np.ndarray]:
    """Dense SIFT descriptors of each image: a list of n_i × 128 float32 arrays (see the
    module docstring for the grid); flat patches (grey-level std below ``min_contrast``)
    give no descriptor."""
    cv2 = _cv2()
    sift = cv2.SIFT_create()
    out = []
    for g in to_grey_uint8(images, min_size=min_size):
        keypoints = _textured(g, dense_keypoints(g.shape, step, patch), patch, min_contrast)
        desc = sift.compute(g, keypoints)[1] if keypoints else None
        out.append(np.zeros((0, 128), np.float32) if desc is None else np.asarray(desc, dtype=np.float32))
    return out


def fit_vocabulary(descriptors: Sequence[np.ndarray] | np.ndarray, vocabulary_size: int = 32, seed: int = 0,
                   attempts: int = 3) -> np.ndarray:
    """k-means visual words (k × 128 float32) of the descriptors (one array, or a list of
    per-image arrays), seeded; k is capped at the number of distinct descriptors.

    Raises
    ------
    ValueError
        If there are no descriptors.
    """
    cv2 = _cv2()
    if isinstance(descriptors, (list, tuple)):
        parts = [np.asarray(d, np.float32).reshape(-1, 128) for d in descriptors]
        data = np.concatenate(parts) if parts else np.zeros((0, 128), np.float32)
    else:
        data = np.asarray(descriptors, np.float32).reshape(-1, 128)
    if not len(data):
        raise ValueError("no descriptors to fit a vocabulary on")
    n_distinct = len(np.unique(data, axis=0))
    k = int(max(1, min(int(vocabulary_size), n_distinct)))
    if k == n_distinct:  # as many words as distinct descriptors: the descriptors themselves
        return np.unique(data, axis=0).astype(np.float32)
    cv2.setRNGSeed(int(seed))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    _, _, centres = cv2.kmeans(np.ascontiguousarray(data), k, None, criteria, int(attempts), cv2.KMEANS_PP_CENTERS)
    return np.asarray(centres, dtype=np.float32)


def bag_of_words(descriptors: Sequence[np.ndarray], vocabulary: np.ndarray) -> np.ndarray:
    """L1-normalised histograms of visual words (N × k): each descriptor counts for its
    nearest word; an image without descriptors gets a row of zeros."""
    vocab = np.asarray(vocabulary, dtype=np.float64)
    k = len(vocab)
    out = np.zeros((len(descriptors), k), dtype=np.float64)
    v2 = (vocab**2).sum(axis=1)
    for i, d in enumerate(descriptors):
        d = np.asarray(d, dtype=np.float64).reshape(-1, 128)
        if not len(d):
            continue
        dist = v2[None, :] - 2.0 * d @ vocab.T  # + |d|², the same for every word
        words = np.argmin(dist, axis=1)
        counts = np.bincount(words, minlength=k).astype(np.float64)
        out[i] = counts / counts.sum()
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = float(np.linalg.norm(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a @ b) / (na * nb)
    return np.clip(np.nan_to_num(cos, nan=0.0), 0.0, 1.0)


def class_similarity(images: np.ndarray, references: np.ndarray, vocabulary_size: int = 32, seed: int = 0,
                     step: int = STEP, patch: int = PATCH, min_size: int = MIN_SIZE) -> np.ndarray:
    """How close each image is to a class's real images, by SIFT bag of words.

    Parameters
    ----------
    images : ndarray
        N × C × H × W (or one C × H × W) in [0, 1]: e.g. activation-maximization images.
    references : ndarray
        M × C' × H' × W' in [0, 1]: real images of the class (C' may differ from C).
    vocabulary_size : int
        Number of visual words, fitted on the references' descriptors.
    seed : int
        Seed of the k-means.
    step, patch, min_size : int
        The dense grid (see the module docstring).

    Returns
    -------
    ndarray
        N scores in [0, 1] (float64): cosine similarity of each image's word histogram with
        the references' mean histogram.

    Raises
    ------
    ValueError
        If ``images`` or ``references`` are not (N ×) C × H × W with C = 1 or 3, or either
        holds no image (there is nothing to score, or nothing to score against).
    """
    images, references = _batch(images), _batch(references)
    if not len(references):
        raise ValueError("class_similarity: no reference image of the class to compare with")
    if not len(images):
        raise ValueError("class_similarity: no image to score")
    ref_desc = dense_sift(references, step, patch, min_size)
    vocab = fit_vocabulary(ref_desc, vocabulary_size, seed)
    ref_mean = bag_of_words(ref_desc, vocab).mean(axis=0)
    hist = bag_of_words(dense_sift(images, step, patch, min_size), vocab)
    return _cosine(hist, ref_mean)
