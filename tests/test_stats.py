"""wordlens.stats against literal references (tests/reference.py), numpy, scipy and hand-made cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch

from reference import (
    bhy_reference,
    corr_rows_reference,
    one_vs_two_loop,
    pearson,
    two_vs_two_accuracy_loop,
    two_vs_two_loop,
)
from wordlens import stats

# ---------------------------------------------------------------------------------------
# Matrix generators
# ---------------------------------------------------------------------------------------


def latent_pair(w: int, seed: int, noise: float = 1.0, dims: tuple[int, int] = (60, 30)):
    """Image- and word-space correlation matrices sharing a latent structure."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(w, 6))
    X = Z @ rng.normal(size=(6, dims[0])) + noise * rng.normal(size=(w, dims[0]))
    Y = Z @ rng.normal(size=(6, dims[1])) + noise * rng.normal(size=(w, dims[1]))
    return np.corrcoef(X), np.corrcoef(Y)


def clustered_pair(w: int, seed: int):
    """Block-structured (clustered concepts) similarity matrices."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=w)
    base = (labels[:, None] == labels[None, :]).astype(float)
    A = 0.7 * base + 0.1 * rng.normal(size=(w, w))
    B = 0.5 * base + 0.2 * rng.normal(size=(w, w))
    A = (A + A.T) / 2
    B = (B + B.T) / 2
    np.fill_diagonal(A, 1.0)
    np.fill_diagonal(B, 1.0)
    return A, B


def high_correlation_pair(w: int, seed: int):
    """All correlations near 0.99 (early CNN layers): tests the conditioning of the fast formula."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=400)
    X = common + 0.1 * rng.normal(size=(w, 400))
    Y = common[:50] + 0.5 * rng.normal(size=(w, 50))
    return np.corrcoef(X), np.corrcoef(Y)


def constant_concept_pair(w: int, seed: int):
    """An image-space matrix where two concepts had constant activations (rows e_i)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(w, 80))
    X[1] = 0.0
    X[w - 2] = 3.0
    A = corr_rows_reference(X)
    B = np.corrcoef(rng.normal(size=(w, 20)))
    return A, B


def nonsymmetric_pair(w: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(w, w)), rng.normal(size=(w, w))


GENERATORS = {
    "latent": latent_pair,
    "clustered": clustered_pair,
    "high_correlation": high_correlation_pair,
    "constant_concepts": constant_concept_pair,
    "nonsymmetric": nonsymmetric_pair,
}


def assert_pairs_match_reference(A, B, min_margin: float = 1e-8):
    result = stats.two_vs_two_pairs(A, B)
    ref_passed, ref_margin = two_vs_two_loop(A, B)
    w = A.shape[0]
    iu = np.triu_indices(w, 1)
    clear = np.abs(ref_margin[iu]) > min_margin
    # Every pair away from an exact tie has the same outcome.
    np.testing.assert_array_equal(result.passed[iu][clear], ref_passed[iu][clear])
    np.testing.assert_allclose(result.margin, ref_margin, rtol=0, atol=1e-9)
    if clear.all():
        assert abs(result.accuracy - ref_passed[iu].mean()) <= 1e-12
    return result


# ---------------------------------------------------------------------------------------
# 2 vs. 2
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GENERATORS))
@pytest.mark.parametrize("w", [4, 5, 9, 23, 60])
def test_two_vs_two_matches_literal_loop(kind, w):
    A, B = GENERATORS[kind](w, seed=w)
    assert_pairs_match_reference(A, B)


def test_two_vs_two_matches_literal_loop_w120():
    A, B = latent_pair(120, seed=7, noise=2.0)
    result = assert_pairs_match_reference(A, B)
    assert 0.5 < result.accuracy < 1.0  # a realistic, non-trivial case
    assert result.n_pairs == 120 * 119 // 2


def test_identical_spaces_score_high_and_unrelated_near_chance():
    A, _ = latent_pair(40, seed=1)
    assert stats.two_vs_two(A, A) > 0.95
    rng = np.random.default_rng(3)
    acc = [stats.two_vs_two(np.corrcoef(rng.normal(size=(40, 30))), np.corrcoef(rng.normal(size=(40, 30))))
           for _ in range(20)]
    assert abs(np.mean(acc) - 0.5) < 0.05


def test_two_vs_two_pairs_structure_and_per_concept():
    A, B = latent_pair(30, seed=11, noise=2.0)
    r = stats.two_vs_two_pairs(A, B)
    ref_passed, _ = two_vs_two_loop(A, B)
    assert r.passed.shape == (30, 30)
    assert not r.passed.diagonal().any()
    np.testing.assert_array_equal(r.passed, r.passed.T)
    np.testing.assert_allclose(r.margin, r.margin.T, atol=0)
    np.testing.assert_allclose(r.per_concept(), ref_passed.sum(axis=1) / 29)
    assert r.n_passed == int(ref_passed[np.triu_indices(30, 1)].sum())
    assert r.n_ties == 0
    assert stats.two_vs_two(A, B) == r.accuracy


def test_ties_count_as_failures_and_are_counted():
    # Concepts 2 and 5 are duplicates in both spaces: matched == mismatched exactly for (2, 5).
    rng = np.random.default_rng(5)
    X = rng.normal(size=(10, 40))
    Y = rng.normal(size=(10, 15))
    X[5] = X[2]
    Y[5] = Y[2]
    A, B = np.corrcoef(X), np.corrcoef(Y)
    r = stats.two_vs_two_pairs(A, B)
    assert r.tie[2, 5] and r.tie[5, 2]
    assert not r.passed[2, 5]
    assert r.n_ties >= 1
    # The literal definition agrees that the pair's two sums are equal.
    _, ref_margin = two_vs_two_loop(A, B)
    assert abs(ref_margin[2, 5]) < 1e-12
    # Ties are failures: accuracy counts only strict passes.
    assert r.accuracy == r.n_passed / r.n_pairs


def test_degenerate_pairs_are_reported_not_nan():
    A, B = constant_concept_pair(12, seed=2)
    r = stats.two_vs_two_pairs(A, B)
    assert np.isfinite(r.margin).all()
    assert r.n_degenerate > 0
    assert r.degenerate[1].sum() == 11  # every pair with the constant concept 1


@pytest.mark.parametrize(
    "A, B, message",
    [
        (np.eye(4), np.eye(5), "same size"),
        (np.ones((4, 5)), np.ones((4, 5)), "square"),
        (np.eye(3), np.eye(3), "w ≥ 4"),
        (np.ones(16), np.ones(16), "2-D"),
        (np.where(np.eye(5) > 0, np.nan, 0.1), np.eye(5), "non-finite"),
        (np.eye(5), np.where(np.eye(5) > 0, np.inf, 0.1), "non-finite"),
        ([["a", "b"], ["c", "d"]], np.eye(2), "numeric"),
    ],
)
def test_two_vs_two_rejects_bad_input(A, B, message):
    with pytest.raises(ValueError, match=message):
        stats.two_vs_two(A, B)


# ---------------------------------------------------------------------------------------
# Permutation nulls
# ---------------------------------------------------------------------------------------


def test_permutation_depends_only_on_seed_and_index():
    np.testing.assert_array_equal(stats.permutation(50, 3, 17), np.random.default_rng([3, 17]).permutation(50))
    assert not np.array_equal(stats.permutation(50, 3, 17), stats.permutation(50, 3, 18))
    assert not np.array_equal(stats.permutation(50, 3, 17), stats.permutation(50, 4, 17))


def test_two_vs_two_null_values_are_relabelled_word_spaces():
    A, B = latent_pair(12, seed=4)
    null = stats.two_vs_two_null(A, B, 8, seed=9, start=5, device="cpu")
    for k in range(8):
        pi = np.random.default_rng([9, 5 + k]).permutation(12)
        assert null[k] == pytest.approx(two_vs_two_accuracy_loop(A, B[pi][:, pi]), abs=1e-12)


def test_two_vs_two_null_chunking_is_exact():
    A, B = latent_pair(40, seed=8, noise=2.0)
    whole = stats.two_vs_two_null(A, B, 100, seed=1, device="cpu")
    parts = np.concatenate(
        [
            stats.two_vs_two_null(A, B, 37, seed=1, start=0, device="cpu", batch_size=5),
            stats.two_vs_two_null(A, B, 50, seed=1, start=37, device="cpu", batch_size=1),
            stats.two_vs_two_null(A, B, 13, seed=1, start=87, device="cpu", batch_size=13),
        ]
    )
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, stats.two_vs_two_null(A, B, 100, seed=2, device="cpu"))


def test_two_vs_two_null_is_centred_on_chance_and_gives_small_p():
    A, B = latent_pair(40, seed=12, noise=1.0)
    null = stats.two_vs_two_null(A, B, 300, seed=0, device="cpu")
    assert abs(null.mean() - 0.5) < 0.05
    observed = stats.two_vs_two(A, B)
    assert observed > null.max()
    assert stats.permutation_pvalue(observed, null) == pytest.approx(1 / 301)


def test_two_vs_two_null_float32_close_to_float64():
    A, B = latent_pair(30, seed=13, noise=2.0)
    n64 = stats.two_vs_two_null(A, B, 20, seed=0, device="cpu")
    n32 = stats.two_vs_two_null(A, B, 20, seed=0, device="cpu", dtype="float32")
    assert np.abs(n64 - n32).max() <= 3 / (30 * 29 / 2)


def test_null_argument_validation():
    A, B = latent_pair(8, seed=1)
    with pytest.raises(ValueError, match="n_permutations"):
        stats.two_vs_two_null(A, B, -1, seed=0)
    with pytest.raises(ValueError, match="seed"):
        stats.two_vs_two_null(A, B, 5, seed=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        stats.two_vs_two_null(A, B, 5, seed=0, batch_size=0)
    with pytest.raises(ValueError, match="device"):
        stats.two_vs_two_null(A, B, 5, seed=0, device="tpu")
    with pytest.raises(ValueError, match="dtype"):
        stats.two_vs_two_null(A, B, 5, seed=0, dtype="float16")
    assert stats.two_vs_two_null(A, B, 0, seed=0).shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_two_vs_two_null_cuda_matches_cpu():
    A, B = latent_pair(200, seed=3, noise=2.0)
    cpu = stats.two_vs_two_null(A, B, 64, seed=5, device="cpu")
    gpu = stats.two_vs_two_null(A, B, 64, seed=5, device="cuda")
    np.testing.assert_allclose(cpu, gpu, atol=2 / (200 * 199 / 2))
    assert stats.two_vs_two(A, B, device="cuda") == stats.two_vs_two(A, B)


# ---------------------------------------------------------------------------------------
# 1 vs. 2
# ---------------------------------------------------------------------------------------


def one_vs_two_inputs(m: int, R: int, seed: int):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(m, R))
    img = truth + rng.normal(size=(m, R))
    true_ref = truth + 0.5 * rng.normal(size=(m, R))
    pred_ref = rng.normal(size=(m, R)) + 0.3 * truth
    return img, true_ref, pred_ref


@pytest.mark.parametrize("m, R, seed", [(1, 3, 0), (7, 5, 1), (60, 100, 2), (200, 30, 3)])
def test_one_vs_two_matches_literal_loop(m, R, seed):
    img, t, p = one_vs_two_inputs(m, R, seed)
    np.testing.assert_array_equal(stats.one_vs_two(img, t, p), one_vs_two_loop(img, t, p))
    scores = stats.one_vs_two_scores(img, t, p)
    np.testing.assert_allclose(scores.r_true, [pearson(a, b) for a, b in zip(img, t)], atol=1e-12)
    np.testing.assert_allclose(scores.r_pred, [pearson(a, b) for a, b in zip(img, p)], atol=1e-12)


def test_one_vs_two_ties_and_constant_rows():
    img, t, _ = one_vs_two_inputs(10, 20, 4)
    r = stats.one_vs_two_scores(img, t, t.copy())
    assert r.n_ties == 10 and not r.passed.any() and r.accuracy == 0.0
    img[3] = 2.0
    r = stats.one_vs_two_scores(img, t, -t)
    assert r.degenerate[3] and not r.passed[3] and np.isfinite(r.margin).all()


def test_one_vs_two_null_relabels_reference_concepts():
    img, t, p = one_vs_two_inputs(15, 12, 5)
    null = stats.one_vs_two_null(img, t, p, 10, seed=4, start=20, device="cpu")
    for k in range(10):
        pi = np.random.default_rng([4, 20 + k]).permutation(12)
        assert null[k] == pytest.approx(one_vs_two_loop(img, t[:, pi], p[:, pi]).mean(), abs=1e-12)


def test_one_vs_two_null_chunking_is_exact_and_centred():
    img, t, p = one_vs_two_inputs(80, 50, 6)
    whole = stats.one_vs_two_null(img, t, p, 400, seed=3, device="cpu")
    parts = np.concatenate(
        [
            stats.one_vs_two_null(img, t, p, 123, seed=3, device="cpu", batch_size=7),
            stats.one_vs_two_null(img, t, p, 277, seed=3, start=123, device="cpu", batch_size=1000),
        ]
    )
    np.testing.assert_array_equal(whole, parts)
    assert abs(whole.mean() - 0.5) < 0.05


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((3, 5), (3, 5), (3, 6)), "same shape"),
        (((3, 2), (3, 2), (3, 2)), "at least 3 reference"),
        (((0, 5), (0, 5), (0, 5)), "at least one test image"),
        (((5,), (5,), (5,)), "2-D"),
    ],
)
def test_one_vs_two_rejects_bad_input(shapes, message):
    arrays = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError, match=message):
        stats.one_vs_two(*arrays)


def test_one_vs_two_rejects_nan():
    img, t, p = one_vs_two_inputs(4, 6, 0)
    img[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"img_ref.*non-finite.*\[2, 3\]"):
        stats.one_vs_two(img, t, p)


# ---------------------------------------------------------------------------------------
# corr_rows
# ---------------------------------------------------------------------------------------


def test_corr_rows_matches_numpy_corrcoef():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 1000)) + rng.normal(size=(30, 1))
    np.testing.assert_allclose(stats.corr_rows(X), np.corrcoef(X), atol=1e-12)
    np.testing.assert_allclose(stats.corr_rows(X, block_size=7), np.corrcoef(X), atol=1e-12)


def test_corr_rows_float32_and_large_offsets():
    rng = np.random.default_rng(1)
    X = (1e4 + rng.normal(size=(12, 5000))).astype(np.float32)
    np.testing.assert_allclose(stats.corr_rows(X, block_size=333), np.corrcoef(X.astype(np.float64)), atol=1e-9)


def test_corr_rows_constant_rows_are_zero_not_nan():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 300))
    X[2] = 0.0  # dead ReLU map
    X[6] = 3.7
    C, constant = stats.corr_rows(X, block_size=64, return_constant=True)
    np.testing.assert_array_equal(constant, [False, False, True, False, False, False, True, False])
    assert np.isfinite(C).all()
    np.testing.assert_allclose(C, corr_rows_reference(X), atol=1e-12)
    assert C[2, 2] == 1.0 and C[2, 6] == 0.0 and np.all(C[2, [0, 1, 3, 4, 5, 7]] == 0.0)


def test_corr_rows_symmetric_unit_diagonal():
    X = np.random.default_rng(3).normal(size=(50, 77))
    C = stats.corr_rows(X, block_size=10)
    np.testing.assert_array_equal(C, C.T)
    np.testing.assert_array_equal(np.diagonal(C), 1.0)


class LazyColumns:
    """A huge n × k matrix produced on demand, recording the widest block ever requested."""

    def __init__(self, n: int, k: int):
        self.shape = (n, k)
        self.widest = 0
        self.requests = 0

    def column_block(self, start: int, stop: int) -> np.ndarray:
        cols = np.arange(start, stop)
        rows = np.arange(self.shape[0])[:, None]
        return np.sin(0.001 * cols * (rows + 1)) + 0.01 * np.cos(cols * (rows + 3))

    def __getitem__(self, key):
        rows, cols = key
        assert rows == slice(None)
        start, stop, _ = cols.indices(self.shape[1])
        self.widest = max(self.widest, stop - start)
        self.requests += 1
        return self.column_block(start, stop)


def test_corr_rows_streams_bounded_blocks_over_millions_of_features():
    X = LazyColumns(6, 2_000_000)
    C = stats.corr_rows(X, block_size=50_000)
    assert X.widest == 50_000 and X.requests == 40
    dense = X.column_block(0, X.shape[1])
    np.testing.assert_allclose(C, np.corrcoef(dense), atol=1e-10)


def test_corr_rows_default_block_is_bounded():
    X = LazyColumns(1000, 20_000)
    stats.corr_rows(X)
    assert X.widest * 1000 * 8 <= stats.DEFAULT_BLOCK_BYTES


def test_corr_rows_reads_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    X = np.random.default_rng(4).normal(size=(20, 900)).astype(np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("activations", data=X, chunks=(5, 900))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        C = stats.corr_rows(f["activations"], block_size=128)
    np.testing.assert_allclose(C, np.corrcoef(X.astype(np.float64)), atol=1e-12)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.ones(5), "2-D"),
        (np.ones((3, 1)), "at least 2 features"),
        (np.ones((0, 4)), "at least one row"),
        (np.array([[1.0, 2.0, np.nan], [1.0, 2.0, 3.0]]), r"non-finite value at row 0, feature 2"),
    ],
)
def test_corr_rows_rejects_bad_input(X, message):
    with pytest.raises(ValueError, match=message):
        stats.corr_rows(X)


# ---------------------------------------------------------------------------------------
# p-values and FDR
# ---------------------------------------------------------------------------------------


def test_permutation_pvalue_formula_by_hand():
    null = np.array([0.1, 0.5, 0.7, 0.2])
    assert stats.permutation_pvalue(0.5, null) == pytest.approx((1 + 2) / 5)  # 0.5 itself counts
    assert stats.permutation_pvalue(0.9, null) == pytest.approx(1 / 5)
    assert stats.permutation_pvalue(0.0, null) == pytest.approx(5 / 5)
    assert np.isnan(stats.permutation_pvalue(np.nan, null))
    p = stats.permutation_pvalue(np.array([0.5, 0.9]), np.stack([null, null]))
    np.testing.assert_allclose(p, [3 / 5, 1 / 5])


def test_permutation_pvalue_rejects_bad_null():
    with pytest.raises(ValueError, match="empty"):
        stats.permutation_pvalue(0.5, np.array([]))
    with pytest.raises(ValueError, match="NaN"):
        stats.permutation_pvalue(0.5, np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="shape"):
        stats.permutation_pvalue(np.array([0.5, 0.6]), np.array([0.1, 0.2]))


@pytest.mark.parametrize("seed", range(5))
def test_fdr_bhy_matches_hand_coded_by_and_scipy(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=30), rng.uniform(0, 0.002, size=10)])
    rng.shuffle(p)
    result = stats.fdr_bhy(p, alpha=0.05)
    ref_reject, ref_q = bhy_reference(p, 0.05)
    np.testing.assert_allclose(result.q, ref_q, rtol=1e-12)
    np.testing.assert_array_equal(result.reject, ref_reject)
    np.testing.assert_allclose(result.q, scipy.stats.false_discovery_control(p, method="by"), rtol=1e-12)
    assert result.n_tests == 40 and result.n_excluded == 0
    assert result.reject.any()


def test_fdr_bhy_is_nan_safe():
    p = np.array([0.001, np.nan, 0.04, 0.0005, np.nan, 0.3])
    with pytest.warns(RuntimeWarning, match="2 NaN"):
        result = stats.fdr_bhy(p, alpha=0.05)
    live = ~np.isnan(p)
    ref_reject, ref_q = bhy_reference(p[live], 0.05)
    np.testing.assert_allclose(result.q[live], ref_q)
    np.testing.assert_array_equal(result.reject[live], ref_reject)
    assert np.isnan(result.q[~live]).all() and not result.reject[~live].any()
    assert (result.n_tests, result.n_excluded) == (4, 2)
    reject, q, n_tests, n_excluded = result  # unpacks like a tuple
    assert n_tests == 4


def test_fdr_bhy_all_nan_and_bad_input():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = stats.fdr_bhy(np.array([np.nan, np.nan]))
    assert r.n_tests == 0 and not r.reject.any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.fdr_bhy(np.array([0.1, 1.5]))
    with pytest.raises(ValueError, match="1-D"):
        stats.fdr_bhy(np.ones((2, 2)) * 0.1)
    with pytest.raises(ValueError, match="alpha"):
        stats.fdr_bhy(np.array([0.1]), alpha=0)


def test_corr_rows_does_not_modify_float64_input():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 400)) + 5.0
    before = X.copy()
    C = stats.corr_rows(X, block_size=64)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(C, np.corrcoef(before), atol=1e-12)
    C = stats.corr_rows(X)  # one block covering every feature
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(C, np.corrcoef(before), atol=1e-12)


def test_corr_rows_read_only_input():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(7, 300)) - 2.0
    before = X.copy()
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "array is not writable" warning either
        C = stats.corr_rows(X, block_size=50)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(C, np.corrcoef(before), atol=1e-12)


def test_corr_rows_read_only_memory_map(tmp_path):
    # In a subprocess: writing into a read-only map is a segfault, which would kill pytest.
    import subprocess
    import sys
    import textwrap

    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 500)) + 1.0
    np.save(tmp_path / "x.npy", X)
    code = textwrap.dedent(
        f"""
        import numpy as np
        from wordlens import stats
        X = np.load({str(tmp_path / "x.npy")!r}, mmap_mode="r")
        for bs in (None, 64):
            C = stats.corr_rows(X, block_size=bs)
            np.testing.assert_allclose(C, np.corrcoef(np.asarray(X)), atol=1e-12)
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"return code {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip().endswith("ok")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), X)
