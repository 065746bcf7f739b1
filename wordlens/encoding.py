"""Similarity encoding over the workflow's image groups: the 2 vs. 2 test per group and
its mean with the group-mean null, and the 1 vs. 2 matrices of test images read from the
activation cache with their nulls per category.

The kernels are :mod:`wordlens.stats`; this module says how the workflow applies them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def aligned_groups(groups: Sequence[Any], table: pd.DataFrame, analysed: Sequence[str]
                   ) -> tuple[list[str], list[np.ndarray], np.ndarray, list[int]]:
    """Image-space matrices of every group and the word-space matrix over the analysed concepts.

    Parameters
    ----------
    groups
        One :class:`wordlens.activations.LayerCorrelation` per image group.
    table, analysed
        The DS model's concept table and the concepts it analyses.

    Returns
    -------
    ids, A, B, n_constant
        As :func:`wordlens.concepts.align_spaces`, plus the number of analysed concepts
        whose activation row is constant in each group (their correlations are undefined).
    """
    from wordlens.concepts import align_spaces

    ids, A, B = align_spaces([(list(g.concepts), g.corr) for g in groups], table, analysed)
    keep = set(ids)
    n_constant = [int(sum(bool(k) for c, k in zip(g.concepts, g.constant) if c in keep)) for g in groups]
    return ids, A, B, n_constant


def two_vs_two_groups(A: Sequence[np.ndarray], B: np.ndarray, n_constant: Sequence[int]
                      ) -> tuple[pd.DataFrame, np.ndarray]:
    """Observed 2 vs. 2 per image group, and their mean (the reported accuracy).

    A group in which some analysed concept's activation row is constant has no defined
    test (a constant row has no correlation with anything): its value is NaN, and so is
    the mean over groups.  ``n_constant`` says how many rows were constant.

    Returns
    -------
    frame
        Rows ``group`` "0", "1", …, "mean" with value, n_ties, n_degenerate, n_concepts,
        n_constant.
    per_concept
        groups × concepts: each concept's accuracy over the pairs it is in (NaN rows for
        undefined groups).
    """
    from wordlens.stats import two_vs_two_pairs

    w = B.shape[0]
    rows, per_concept = [], []
    for g, (Ag, k) in enumerate(zip(A, n_constant)):
        if k:
            log.warning("group %d: %d constant activation row(s); its 2 vs. 2 test is undefined (NaN)", g, k)
            rows.append({"group": str(g), "value": np.nan, "n_ties": 0, "n_degenerate": 0, "n_concepts": w,
                         "n_constant": int(k)})
            per_concept.append(np.full(w, np.nan))
            continue
        r = two_vs_two_pairs(Ag, B)
        rows.append({"group": str(g), "value": r.accuracy, "n_ties": r.n_ties, "n_degenerate": r.n_degenerate,
                     "n_concepts": w, "n_constant": 0})
        per_concept.append(r.per_concept())
    frame = pd.DataFrame(rows)
    mean = float(frame["value"].mean()) if frame["value"].notna().all() else np.nan
    frame = pd.concat([frame, pd.DataFrame([{"group": "mean", "value": mean, "n_ties": int(frame["n_ties"].sum()),
                                             "n_degenerate": int(frame["n_degenerate"].sum()), "n_concepts": w,
                                             "n_constant": int(frame["n_constant"].sum())}])], ignore_index=True)
    return frame, np.asarray(per_concept)


def two_vs_two_group_null(A: Sequence[np.ndarray], B: np.ndarray, start: int, stop: int, seed: int,
                          device: str = "auto", dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Permutations ``[start, stop)`` of the 2 vs. 2 null of every group and of the group mean.

    Permutation p relabels the word space with the same π (``default_rng([seed, p])``)
    in every group, so the mean over groups under permutation p is a draw from the null
    of the reported (group-mean) accuracy.

    Returns
    -------
    per_group, mean
        groups × (stop − start), and its mean over groups.
    """
    from wordlens.stats import two_vs_two_null

    per_group = np.stack([two_vs_two_null(Ag, B, stop - start, seed, start, device=device, dtype=dtype) for Ag in A])
    return per_group, per_group.mean(axis=0)


def category_order(categories: Sequence[str] | np.ndarray) -> list[str]:
    """Distinct non-empty categories: the adversarial similarity categories in their
    defined order (most to least similar) first, then any others in order of appearance."""
    from wordlens.concepts import TARGET_CATEGORIES

    present = list(dict.fromkeys(str(c) for c in categories if str(c)))
    return [c for c in TARGET_CATEGORIES if c in present] + [c for c in present if c not in TARGET_CATEGORIES]


def one_vs_two_matrices(cases: pd.DataFrame, h5: str, table: pd.DataFrame, reference_h5: str | None = None,
                        block_size: int = 16384) -> dict[str, np.ndarray]:
    """The 1 vs. 2 inputs of one layer: m test images × R reference concepts, and the outcome.

    ``img[i, r]`` is the Pearson correlation, at this layer, of test image i with the
    representative image of its reference r; ``true[i, r]`` / ``pred[i, r]`` are the
    word-space correlations of its true / predicted class with r.  Test images are rows
    of ``h5``; reference images are rows of ``reference_h5`` when given (adversarial
    images are tested against clean references), else of ``h5``.  A ``category`` column
    of ``cases`` (adversarial similarity categories) is carried along.

    Returns
    -------
    dict with img, true, pred, passed, r_true, r_pred, category and n_constant (the
    number of involved activation rows that are constant; any makes ``passed`` undefined,
    so it is then all False and the layer's value is reported as NaN).
    """
    from wordlens.activations import HDF5Rows, StackedRows, open_activations
    from wordlens.concepts import word_similarity
    from wordlens.stats import corr_rows, one_vs_two_scores

    categories = np.array([str(c) for c in cases["category"]] if "category" in cases else [""] * len(cases), dtype=str)
    R = len(cases["references"].iloc[0]) if len(cases) else 0
    if len(cases) == 0 or R < 3:
        log.warning("no 1 vs. 2 test possible: %d test image(s), %d reference(s)", len(cases), R)
        empty = np.zeros((0, max(R, 0)))
        return {"img": empty, "true": empty, "pred": empty, "passed": np.zeros(0, bool), "r_true": np.zeros(0),
                "r_pred": np.zeros(0), "category": np.zeros(0, dtype=str), "n_constant": np.int64(0)}
    test_rows = np.unique(cases["row"].to_numpy())
    ref_rows = np.unique(np.concatenate(cases["reference_rows"].to_numpy()))
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open_activations(h5))
        if reference_h5 is None:
            needed = np.union1d(test_rows, ref_rows)
            C, constant = corr_rows(HDF5Rows(f["activations"], needed), block_size=block_size, return_constant=True)
            test_pos = ref_pos = {int(r): i for i, r in enumerate(needed)}
        else:
            g = stack.enter_context(open_activations(reference_h5))
            rows = StackedRows(HDF5Rows(f["activations"], test_rows), HDF5Rows(g["activations"], ref_rows))
            C, constant = corr_rows(rows, block_size=block_size, return_constant=True)
            test_pos = {int(r): i for i, r in enumerate(test_rows)}
            ref_pos = {int(r): len(test_rows) + i for i, r in enumerate(ref_rows)}
    img = np.array([[C[test_pos[m.row], ref_pos[r]] for r in m.reference_rows] for m in cases.itertuples(index=False)])
    used = sorted(set(cases["true"]) | set(cases["predicted"]) | {c for refs in cases["references"] for c in refs})
    ids, CD = word_similarity(table, used)
    at = {c: i for i, c in enumerate(ids)}
    wt = np.array([[CD[at[m.true], at[c]] for c in m.references] for m in cases.itertuples(index=False)])
    wp = np.array([[CD[at[m.predicted], at[c]] for c in m.references] for m in cases.itertuples(index=False)])
    scores = one_vs_two_scores(img, wt, wp)
    n_constant = int(np.asarray(constant).sum())
    if n_constant:
        log.warning("%d constant activation row(s) among the test and reference images: the 1 vs. 2 test of this "
                    "layer is undefined (NaN)", n_constant)
    return {"img": img, "true": wt, "pred": wp, "passed": scores.passed, "r_true": scores.r_true,
            "r_pred": scores.r_pred, "category": categories, "n_constant": np.int64(n_constant)}


def one_vs_two_category_nulls(img: np.ndarray, wt: np.ndarray, wp: np.ndarray, category: np.ndarray, start: int,
                              stop: int, seed: int, device: str = "auto", dtype: str = "float64"
                              ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Permutations ``[start, stop)`` of the 1 vs. 2 null over all test images and over each
    category's subset (:func:`category_order`); NaN where a subset is empty or R < 3.

    Returns
    -------
    null, categories, category_null
        (stop − start,), the category names, and categories × (stop − start).
    """
    from wordlens.stats import one_vs_two_null

    def null_of(mask: np.ndarray) -> np.ndarray:
        if mask.any() and img.shape[1] >= 3:
            return one_vs_two_null(img[mask], wt[mask], wp[mask], stop - start, seed, start, device=device,
                                   dtype=dtype)
        return np.full(stop - start, np.nan)

    null = null_of(np.ones(len(img), bool))
    cats = category_order(category)
    per_category = np.stack([null_of(category == c) for c in cats]) if cats else np.zeros((0, stop - start))
    return null, cats, per_category
