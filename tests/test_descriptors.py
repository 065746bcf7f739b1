"""wordlens.descriptors against hand computations: the dense grid, the grey conversion,
the nearest-word histogram; class_similarity ranks copies of the references above noise,
is deterministic by seed and refuses bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wordlens import descriptors as D


def _stripes(n, h=28, w=28, seed=0, period=2.5):
    """Vertical stripes at random phases: one 'class' with a clear texture."""
    rng = np.random.default_rng(seed)
    xx = np.mgrid[0:h, 0:w][1]
    return np.stack([0.5 + 0.5 * np.sin((xx + rng.uniform(0, 6)) / period)[None] for _ in range(n)])


def _noise(n, h=28, w=28, seed=1, c=1):
    return np.random.default_rng(seed).uniform(size=(n, c, h, w))


# --------------------------------------------------------------------------------------
# The dense grid
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "step", "patch"), [((64, 64), 8, 16), ((64, 91), 8, 16), ((40, 33), 5, 10),
                                                        ((16, 16), 8, 16)])
def test_dense_keypoints_grid(shape, step, patch):
    kps = D.dense_keypoints(shape, step, patch)
    h, w = shape
    # by hand: centres patch/2, patch/2 + step, … while at least patch/2 from the far border
    ys = [patch / 2 + step * i for i in range(1000) if patch / 2 + step * i <= h - patch / 2]
    xs = [patch / 2 + step * i for i in range(1000) if patch / 2 + step * i <= w - patch / 2]
    assert [(k.pt[1], k.pt[0]) for k in kps] == [(y, x) for y in ys for x in xs]  # row-major
    assert all(k.size == patch and k.angle == 0 for k in kps)


def test_dense_keypoints_default_grid_is_7_by_7_on_64_pixels():
    kps = D.dense_keypoints((64, 64))
    assert len(kps) == 49
    assert sorted({k.pt[0] for k in kps}) == [8, 16, 24, 32, 40, 48, 56]


def test_dense_keypoints_smaller_than_a_patch_is_the_centre():
    kps = D.dense_keypoints((10, 40), step=8, patch=16)
    assert {k.pt[1] for k in kps} == {5.0} and [k.pt[0] for k in kps] == [8, 16, 24, 32]


# --------------------------------------------------------------------------------------
# Grey conversion
# --------------------------------------------------------------------------------------


def test_to_grey_uint8_rgb_is_bt601():
    x = np.random.default_rng(0).uniform(size=(3, 3, 70, 80))
    got = D.to_grey_uint8(x)  # 70 × 80 ≥ 64: not resized
    for g, img in zip(got, x):
        r, gr, b = img
        literal = np.rint(255 * (0.299 * r + 0.587 * gr + 0.114 * b)).astype(np.int64)
        assert g.dtype == np.uint8 and g.shape == (70, 80)
        diff = np.abs(g.astype(np.int64) - literal)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99  # float32 rounding at .5 only


def test_to_grey_uint8_grey_clipping_nan_and_literal_values():
    x = np.array([[[[0.0, 0.5, 1.0, 2.0], [-1.0, np.nan, np.inf, 0.2]]]])  # 1 × 1 × 2 × 4
    (g,) = D.to_grey_uint8(x, min_size=1)
    assert g.tolist() == [[0, 128, 255, 255], [0, 0, 255, 51]]  # clipped; NaN → 0; +inf → 1
    rgb = np.zeros((1, 3, 1, 1))
    rgb[0, 1] = 1.0  # pure green
    assert D.to_grey_uint8(rgb, min_size=1)[0].tolist() == [[round(0.587 * 255)]]


def test_to_grey_uint8_upscales_the_shorter_side():
    (a,) = D.to_grey_uint8(np.full((1, 1, 28, 40), 0.25))
    assert a.shape == (64, round(40 * 64 / 28))
    assert (a == round(0.25 * 255)).all()  # bicubic keeps a flat image flat
    (b,) = D.to_grey_uint8(np.zeros((1, 1, 28, 28)), min_size=28)
    assert b.shape == (28, 28)
    one = D.to_grey_uint8(np.zeros((3, 32, 32)))  # one C × H × W image
    assert len(one) == 1 and one[0].shape == (64, 64)


@pytest.mark.parametrize("shape", [(28, 28), (2, 2, 28, 28), (1, 1, 1, 28, 28), (0,)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(ValueError, match="N × C × H × W with C = 1 or 3"):
        D.to_grey_uint8(np.zeros(shape))
    with pytest.raises(ValueError, match="N × C × H × W"):
        D.class_similarity(np.zeros(shape), _stripes(2))
    with pytest.raises(ValueError, match="N × C × H × W"):
        D.class_similarity(_stripes(2), np.zeros(shape))


# --------------------------------------------------------------------------------------
# Descriptors, vocabulary, histograms
# --------------------------------------------------------------------------------------


def test_dense_sift_shapes():
    d = D.dense_sift(np.concatenate([_stripes(2), _noise(1)]))
    assert [x.shape for x in d] == [(49, 128)] * 3 and all(x.dtype == np.float32 for x in d)
    big = D.dense_sift(_noise(1, 80, 96))  # kept at its size: (80 − 16)/8 + 1 = 9 rows, 11 columns
    assert big[0].shape == (99, 128)
    assert not np.array_equal(d[0], d[2])


def test_bag_of_words_is_the_nearest_word_histogram():
    rng = np.random.default_rng(3)
    vocab = rng.normal(size=(6, 128)).astype(np.float32)
    descs = [rng.normal(size=(n, 128)).astype(np.float32) for n in (10, 1, 37)]
    descs.append(np.zeros((0, 128), np.float32))  # an image without descriptors
    got = D.bag_of_words(descs, vocab)
    assert got.shape == (4, 6)
    for d, row in zip(descs[:3], got[:3]):
        words = [int(np.argmin([((x - v) ** 2).sum() for v in vocab])) for x in d.astype(np.float64)]
        expected = np.array([words.count(j) for j in range(6)]) / len(words)
        np.testing.assert_allclose(row, expected)
    assert got[3].tolist() == [0.0] * 6
    # a descriptor equal to a word counts for it
    assert D.bag_of_words([vocab[[4, 4, 1]]], vocab).tolist() == [[0, 1 / 3, 0, 0, 2 / 3, 0]]


def test_fit_vocabulary_caps_at_distinct_descriptors_and_is_seeded():
    rng = np.random.default_rng(4)
    few = rng.normal(size=(3, 128)).astype(np.float32)
    words = D.fit_vocabulary([few, few[:1]], vocabulary_size=32)  # 3 distinct descriptors
    np.testing.assert_array_equal(np.sort(words, axis=0), np.sort(few, axis=0))
    many = [rng.normal(size=(40, 128)).astype(np.float32) for _ in range(3)]
    a = D.fit_vocabulary(many, vocabulary_size=8, seed=5)
    b = D.fit_vocabulary(np.concatenate(many), vocabulary_size=8, seed=5)  # one array or a list
    assert a.shape == (8, 128) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no descriptors"):
        D.fit_vocabulary([], 8)
    with pytest.raises(ValueError, match="no descriptors"):
        D.fit_vocabulary(np.zeros((0, 128)), 8)


# --------------------------------------------------------------------------------------
# The score
# --------------------------------------------------------------------------------------


def test_copies_of_the_references_score_higher_than_noise():
    refs = _stripes(8)
    images = np.concatenate([refs[:3], _noise(3)])
    s = D.class_similarity(images, refs, seed=0)
    assert s.shape == (6,) and s.dtype == np.float64
    assert ((0 <= s) & (s <= 1)).all()
    assert s[:3].min() > s[3:].max()
    rgb_noise = _noise(2, 32, 32, c=3)  # another channel count and size than the references
    assert D.class_similarity(rgb_noise, refs).max() < s[:3].min()


def test_identical_to_a_single_reference_scores_one():
    ref = _stripes(1)
    assert D.class_similarity(ref, ref)[0] == pytest.approx(1.0)


def test_class_similarity_is_deterministic_by_seed():
    refs, images = _stripes(6, seed=7), np.concatenate([_stripes(2, seed=8), _noise(2)])
    a = D.class_similarity(images, refs, seed=3)
    b = D.class_similarity(images, refs, seed=3)
    np.testing.assert_array_equal(a, b)
    c = D.class_similarity(images[0], refs, seed=3)  # one C × H × W image
    assert c.shape == (1,) and c[0] == pytest.approx(a[0], rel=1e-12)


def test_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="no reference image"):
        D.class_similarity(_stripes(1), np.zeros((0, 1, 28, 28)))
    with pytest.raises(ValueError, match="no image to score"):
        D.class_similarity(np.zeros((0, 1, 28, 28)), _stripes(2))


def test_flat_images_have_no_texture_to_match():
    flat = np.full((2, 1, 28, 28), 0.5)
    s = D.class_similarity(np.concatenate([flat, _stripes(1, seed=9)]), _stripes(5))
    assert np.isfinite(s).all() and s[2] > s[0]


def test_class_similarity_is_the_same_in_another_process():
    """A rerun of the workflow (a new process, OpenCV's RNG fresh) gives the same scores."""
    code = ("import json, numpy as np, test_descriptors as t; from wordlens.descriptors import class_similarity as c; "
            "print(json.dumps(c(np.concatenate([t._stripes(2, seed=8), t._noise(2)]), t._stripes(6, seed=7), "
            "seed=3).tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent).stdout
    here = D.class_similarity(np.concatenate([_stripes(2, seed=8), _noise(2)]), _stripes(6, seed=7), seed=3)
    assert json.loads(out) == here.tolist()


def test_flat_patches_give_no_descriptor_and_a_featureless_image_scores_zero():
    rng = np.random.default_rng(0)
    # a nearly uniform grey image: a ripple of ±1 grey level, which SIFT alone would
    # normalise into full-strength "edges"
    flat = (0.5 + rng.integers(-1, 2, size=(1, 1, 28, 28)) / 255.0).astype(np.float32)
    assert D.dense_sift(flat)[0].shape == (0, 128)
    # a real-looking class: stripes on a flat black background (whose patches are dropped too)
    refs = _stripes(4)
    refs[:, :, :, :8] = 0.0
    n_refs = [len(d) for d in D.dense_sift(refs)]
    n_full = [len(d) for d in D.dense_sift(refs, min_contrast=0.0)]
    assert all(a < b for a, b in zip(n_refs, n_full)) and all(a > 0 for a in n_refs)
    assert D.class_similarity(flat, refs)[0] == 0.0
    assert D.class_similarity(refs[:1], refs)[0] > 0.5
