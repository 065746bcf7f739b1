"""How the workflow applies the tests: concept alignment, per-group 2 vs. 2 and the
group-mean null, 1 vs. 2 matrices from the activation cache and their category nulls."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from reference import one_vs_two_loop, two_vs_two_accuracy_loop

from wordlens import encoding, stats
from wordlens.activations import LayerCorrelation
from wordlens.concepts import align_spaces, analysed_concepts


def concept_table(ids, dim=6, seed=0, unmatched=()):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"class_index": range(len(ids)), "class_id": ids, "synonyms": [[c] for c in ids],
                         "matched": [c not in unmatched for c in ids], "synonym_index": 0,
                         "matched_synonym": ids, "matched_term": ids,
                         "vector": [None if c in unmatched else rng.normal(size=dim).astype(np.float32)
                                    for c in ids]})


def test_alignment_keeps_the_analysed_concepts_in_the_first_groups_order():
    ids = ["a", "b", "c", "d", "e"]
    table = concept_table(ids, unmatched=("c",))
    other = concept_table(ids, unmatched=("e",))
    analysed = analysed_concepts(table, [other])
    assert analysed == ["a", "b", "d"]
    rng = np.random.default_rng(1)
    M0 = np.corrcoef(rng.normal(size=(5, 9)))
    order1 = ["e", "d", "c", "b", "a"]
    M1 = M0[::-1, ::-1]  # the same matrix with the rows in order1
    got, A, B = align_spaces([(ids, M0), (order1, M1)], table, ["a", "b", "d", "e"], min_concepts=4)
    assert got == ["a", "b", "d", "e"]
    np.testing.assert_allclose(A[0], A[1])
    idx = [0, 1, 3, 4]
    np.testing.assert_allclose(A[0], M0[np.ix_(idx, idx)])
    vec = np.stack([table.set_index("class_id").at[c, "vector"] for c in got]).astype(np.float64)
    np.testing.assert_allclose(B, np.corrcoef(vec), atol=1e-12)
    with pytest.raises(ValueError, match="only 3 concepts"):
        align_spaces([(ids, M0)], table, analysed)
    with pytest.raises(ValueError, match="group 1 has no image of concept"):
        align_spaces([(ids, M0), (["a", "b", "d"], M0[:3, :3])], table, ["a", "b", "d", "e"])


def test_groups_and_mean_against_the_literal_test():
    rng = np.random.default_rng(2)
    B = np.corrcoef(rng.normal(size=(7, 10)))
    A = [np.corrcoef(rng.normal(size=(7, 12))) for _ in range(3)]
    frame, per_concept = encoding.two_vs_two_groups(A, B, [0, 0, 0])
    accs = [two_vs_two_accuracy_loop(Ag, B) for Ag in A]
    np.testing.assert_allclose(frame["value"][:3], accs)
    assert frame.iloc[3]["group"] == "mean" and frame.iloc[3]["value"] == pytest.approx(np.mean(accs))
    assert per_concept.shape == (3, 7)


def test_a_group_with_constant_rows_is_undefined():
    rng = np.random.default_rng(3)
    B = np.corrcoef(rng.normal(size=(6, 10)))
    A = [np.corrcoef(rng.normal(size=(6, 12))) for _ in range(2)]
    frame, per_concept = encoding.two_vs_two_groups(A, B, [0, 2])
    assert np.isfinite(frame.iloc[0]["value"]) and np.isnan(frame.iloc[1]["value"])
    assert np.isnan(frame.iloc[2]["value"]) and frame.iloc[2]["n_constant"] == 2  # the mean is undefined too
    assert np.isnan(per_concept[1]).all()


def test_aligned_groups_count_constant_rows_of_analysed_concepts_only():
    corr = np.eye(5)
    g = LayerCorrelation(corr=corr, constant=np.array([False, True, False, False, True]),
                         concepts=np.array(list("abcde")), image_ids=np.array(list("ABCDE")), meta={})
    table = concept_table(list("abcde"))
    _, _, _, n_constant = encoding.aligned_groups([g], table, ["a", "b", "c", "d"])
    assert n_constant == [1]


def test_group_mean_null_is_the_mean_of_identically_permuted_groups():
    rng = np.random.default_rng(4)
    B = np.corrcoef(rng.normal(size=(8, 10)))
    A = [np.corrcoef(rng.normal(size=(8, 12))) for _ in range(3)]
    per_group, mean = encoding.two_vs_two_group_null(A, B, 5, 12, seed=7, device="cpu")
    for g, Ag in enumerate(A):
        for k, p in enumerate(range(5, 12)):
            perm = np.random.default_rng([7, p]).permutation(8)
            assert per_group[g, k] == pytest.approx(two_vs_two_accuracy_loop(Ag, B[np.ix_(perm, perm)]))
    np.testing.assert_allclose(mean, per_group.mean(axis=0))


def test_one_vs_two_matrices_from_the_cache(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(10, 30)).astype(np.float32)
    X[9] = 1.0  # a constant row, not involved at first
    h5 = tmp_path / "layer.h5"
    with h5py.File(h5, "w") as f:
        f["activations"] = X
    table = concept_table(list("abcdef"))
    cases = pd.DataFrame({"row": [0, 4], "true": ["a", "b"], "predicted": ["b", "c"],
                          "references": [["c", "d", "e"], ["a", "d", "f"]], "reference_rows": [[2, 3, 5], [1, 6, 7]],
                          "category": ["most similar", "least similar"]})
    out = encoding.one_vs_two_matrices(cases, str(h5), table, block_size=7)
    Xd = X.astype(np.float64)
    img = np.array([[np.corrcoef(Xd[m], Xd[r])[0, 1] for r in rr] for m, rr in zip([0, 4], cases["reference_rows"])])
    np.testing.assert_allclose(out["img"], img, atol=1e-10)
    vec = {c: v.astype(np.float64) for c, v in zip(table["class_id"], table["vector"])}
    wt = np.array([[np.corrcoef(vec[t], vec[c])[0, 1] for c in refs] for t, refs in zip(cases["true"], cases["references"])])
    np.testing.assert_allclose(out["true"], wt, atol=1e-6)
    np.testing.assert_array_equal(out["passed"], one_vs_two_loop(out["img"], out["true"], out["pred"]))
    assert out["category"].tolist() == ["most similar", "least similar"] and out["n_constant"] == 0
    # adversarial images against clean references in another file
    adv = tmp_path / "adv.h5"
    with h5py.File(adv, "w") as f:
        f["activations"] = X[[4, 3, 2, 1, 0, 5, 6, 7, 8, 0]] * 2 + 1
    out2 = encoding.one_vs_two_matrices(cases, str(adv), table, reference_h5=str(h5))
    Ad = (X[[4, 3, 2, 1, 0, 5, 6, 7, 8, 0]] * 2 + 1).astype(np.float64)
    img2 = np.array([[np.corrcoef(Ad[m], Xd[r])[0, 1] for r in rr]
                     for m, rr in zip([0, 4], cases["reference_rows"])])
    np.testing.assert_allclose(out2["img"], img2, atol=1e-10)
    cases.loc[1, "reference_rows"] = [1, 6, 9]
    assert encoding.one_vs_two_matrices(cases, str(h5), table)["n_constant"] == 1


def test_category_nulls_are_the_subsets_nulls():
    rng = np.random.default_rng(6)
    img, wt, wp = (rng.normal(size=(6, 5)) for _ in range(3))
    cat = np.array(["least similar", "most similar", "least similar", "most similar", "x", "most similar"])
    null, cats, per = encoding.one_vs_two_category_nulls(img, wt, wp, cat, 0, 9, seed=3, device="cpu")
    assert cats == ["most similar", "least similar", "x"]
    np.testing.assert_allclose(null, stats.one_vs_two_null(img, wt, wp, 9, seed=3, device="cpu"))
    m = cat == "least similar"
    np.testing.assert_allclose(per[1], stats.one_vs_two_null(img[m], wt[m], wp[m], 9, seed=3, device="cpu"))
