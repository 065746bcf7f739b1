"""Which images are tested: representatives, reference draws, mistakes, attack sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wordlens import selection
from wordlens.concepts import TARGET_CATEGORIES


def predictions(rows):
    """rows: (row, concept, correct, pred_index) → a predictions table."""
    return pd.DataFrame([{"row": r, "image_id": f"img{r}", "group": r % 2, "concept": c, "correct": ok,
                          "pred_index": p, "pred_prob": 0.5} for r, c, ok, p in rows])


def test_representative_is_the_first_correct_image_by_row():
    pred = predictions([(5, "a", True, 0), (1, "a", False, 1), (3, "a", True, 0), (2, "b", True, 1),
                        (0, "c", False, 0), (4, "z", True, 3)])
    reps = selection.representatives(pred, {"a", "b", "c"})
    assert reps.to_dict("records") == [{"concept": "b", "row": 2, "image_id": "img2"},
                                       {"concept": "a", "row": 3, "image_id": "img3"}]  # c: none correct; z: no vector


def test_references_exclude_the_case_classes_and_are_seeded_per_row():
    reps = pd.DataFrame({"concept": list("abcdef"), "row": [10, 11, 12, 13, 14, 15], "image_id": list("ABCDEF")})
    cases = [(7, "a", "b"), (8, "c", "a"), (9, "f", "e")]
    R, refs, ref_rows = selection.draw_references(cases, reps, n_reference=3, seed=4)
    assert R == 3
    for (row, true, pred), r, rr in zip(cases, refs, ref_rows):
        pool = [c for c in "abcdef" if c not in (true, pred)]
        expected = sorted(np.random.default_rng([4, row]).choice(pool, size=3, replace=False).tolist())
        assert r == expected
        assert rr == [10 + "abcdef".index(c) for c in r]
    # R is the smallest eligible count when n_reference asks for more than some case has
    R, refs, _ = selection.draw_references(cases, reps, n_reference=10, seed=4)
    assert R == 4 and all(len(r) == 4 for r in refs)
    assert selection.draw_references([], reps, 5, 0) == (0, [], [])


def test_mistakes_need_vectors_for_both_classes():
    ids = ["a", "b", "c", "d", "e", "f"]
    pred = predictions([(0, "a", True, 0), (1, "b", True, 1), (2, "c", True, 2), (3, "d", True, 3),
                        (4, "a", False, 1), (5, "b", False, 5), (6, "e", False, 0), (7, "c", True, 2)])
    vectors = {c: np.eye(6)[i] + 0.1 for i, c in enumerate("abcd")}
    frame = selection.select_mistakes(pred, vectors, ids, n_reference=2, seed=0)
    # row 5 predicts f (no vector), row 6 is of e (no vector): only row 4 (a → b) is tested
    assert frame["row"].tolist() == [4] and frame.at[0, "true"] == "a" and frame.at[0, "predicted"] == "b"
    assert set(frame.at[0, "references"]) <= {"c", "d"} and len(frame.at[0, "references"]) == 2
    u, v = vectors["a"], vectors["b"]
    assert frame.at[0, "cosine_true_predicted"] == pytest.approx(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    assert list(frame.columns) == list(selection.MISTAKE_COLUMNS)


def test_attack_sources_are_a_seeded_draw_in_candidate_order():
    candidates = [f"c{i}" for i in range(20)]
    picked = np.sort(np.random.default_rng(3).choice(20, size=5, replace=False))
    assert selection.attack_sources(candidates, 5, 3) == [candidates[i] for i in picked]
    assert selection.attack_sources(candidates[:3], 5, 3) == candidates[:3]  # fewer candidates than asked


def test_select_attacks_targets_and_chunks():
    ids = [f"k{i}" for i in range(9)]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 5))
    S = np.corrcoef(X)
    pred = predictions([(i, ids[i], i != 4, i) for i in range(9)])  # k4 has no correct image
    frame = selection.select_attacks(pred, (ids, S), ids, n_sources=3, n_targets=6, sources_per_job=2, seed=1)
    sources = frame["source"].unique().tolist()
    assert len(sources) == 3 and "k4" not in sources
    assert len(frame) == 18 and frame["attack"].tolist() == list(range(18))
    for j, src in enumerate(sources):
        rows = frame[frame["source"] == src]
        assert rows["category"].tolist() == list(TARGET_CATEGORIES)
        assert (rows["source_chunk"] == j // 2).all()
        s = ids.index(src)
        corr = S[s, [ids.index(t) for t in rows["target"]]]
        others = np.delete(S[s], s)
        assert corr[0] == pytest.approx(others.max()) and corr[-1] == pytest.approx(others.min())
        assert (np.diff(corr) <= 1e-12).all()
    with pytest.raises(ValueError, match="lower adversarial.n_targets"):
        selection.select_attacks(pred, (ids[:5], S[:5, :5]), ids, 3, 6, 2, 1)


def test_adversarial_tests_use_source_and_target_and_clean_references():
    reps_pred = predictions([(i, c, True, i) for i, c in enumerate("abcdefg")])
    man = pd.DataFrame({"row": [0, 1, 2], "image_id": ["x0", "x1", "x2"], "attack": [3, 4, 5],
                        "concept": ["a", "a", "z"], "target": ["b", "g", "c"], "category": ["most similar",
                                                                                           "least similar", "x"]})
    frame = selection.adversarial_tests(man, reps_pred, set("abcdefg"), n_reference=3, seed=2)
    assert frame["attack"].tolist() == [3, 4]  # z has no word vector
    for t in frame.itertuples():
        assert t.true not in t.references and t.predicted not in t.references and len(t.references) == 3
        assert t.reference_rows == ["abcdefg".index(c) for c in t.references]
