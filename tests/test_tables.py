"""Tidy tables: null chunks, p-values, block means and their null, BHY, concatenation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from wordlens import tables
from wordlens.naming import chunk_bounds


def test_chunk_bounds_tile_the_range():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(8, 4) == [(0, 4), (4, 8)]
    assert chunk_bounds(0, 4) == []
    # raising the count keeps the earlier full chunks
    assert chunk_bounds(13, 4)[:2] == chunk_bounds(10, 4)[:2]
    with pytest.raises(ValueError):
        chunk_bounds(5, 0)


def test_null_chunks_concatenate_in_order_and_must_tile():
    chunks = [{"start": 3, "stop": 5, "null": np.array([3.0, 4.0])}, {"start": 0, "stop": 3, "null": np.arange(3.0)}]
    np.testing.assert_array_equal(tables.load_null_chunks(chunks, 5), np.arange(5.0))
    np.testing.assert_array_equal(tables.load_null_chunks(chunks, 4), np.arange(4.0))  # surplus dropped
    with pytest.raises(ValueError, match="cover only"):
        tables.load_null_chunks(chunks, 6)
    with pytest.raises(ValueError, match="do not tile"):
        tables.load_null_chunks(chunks[:1], 5)
    two_d = [{"start": 0, "stop": 2, "groups": np.ones((3, 2))}, {"start": 2, "stop": 3, "groups": np.zeros((3, 1))}]
    assert tables.load_null_chunks(two_d, 3, "groups").shape == (3, 3)


def test_block_mean_and_its_null_by_hand():
    values = [0.6, 0.8, 0.5, np.nan, 0.7]
    nulls = [np.array([0.4, 0.6]), np.array([0.5, 0.9]), np.array([0.2, 0.3]), np.array([0.1, 0.1]),
             np.array([0.8, 0.2])]
    blocks = ["b1", "b1", "b2", "b2", "b3"]
    out = tables.block_means(values, nulls, blocks)
    assert [b for b, _, _ in out] == ["b1", "b2", "b3"]
    assert out[0][1] == pytest.approx(0.7)
    np.testing.assert_allclose(out[0][2], [0.45, 0.75])  # permutation by permutation
    assert out[1][1] == pytest.approx(0.5)  # the NaN layer is left out of its block
    np.testing.assert_allclose(out[1][2], [0.2, 0.3])


def _one_vs_two_inputs(passed, category=None):
    passed = np.asarray(passed, bool)
    cat = np.asarray(category if category is not None else [""] * len(passed), dtype=str)
    return {"passed": passed, "category": cat, "n_constant": 0}


def test_one_vs_two_table_block_mean_pvalue_literal():
    rng = np.random.default_rng(0)
    layers, blocks = ["l1", "l2", "l3"], ["A", "A", "B"]
    obs = [_one_vs_two_inputs(rng.random(8) < p) for p in (0.9, 0.7, 0.5)]
    n = 30
    nulls = [{"null": rng.random(n), "categories": [], "category_null": np.zeros((0, n))} for _ in layers]
    frame = tables.one_vs_two_table(layers, dict(zip(layers, blocks)), obs, nulls, "m", "w2v", "s", n, 0.05)
    layer_rows = frame[frame["statistic"] == "1v2"].set_index("layer")
    for layer, o, nl in zip(layers, obs, nulls):
        v = o["passed"].mean()
        assert layer_rows.at[layer, "value"] == pytest.approx(v)
        assert layer_rows.at[layer, "p"] == pytest.approx((1 + np.sum(nl["null"] >= v - 1e-12)) / (1 + n))
    block_rows = frame[frame["statistic"] == "1v2_block_mean"].set_index("layer")
    assert block_rows.index.tolist() == ["A", "B"]
    vA = (obs[0]["passed"].mean() + obs[1]["passed"].mean()) / 2
    nullA = (nulls[0]["null"] + nulls[1]["null"]) / 2
    # literal: the fraction of permutations whose block mean is at least the observed, +1 / n+1
    pA = (1 + sum(1 for k in range(n) if nullA[k] >= vA - 1e-12)) / (1 + n)
    assert block_rows.at["A", "value"] == pytest.approx(vA)
    assert block_rows.at["A", "p"] == pytest.approx(pA)
    # BHY per family: the layer rows together, the block rows together
    q = multipletests(layer_rows["p"], method="fdr_by")[1]
    np.testing.assert_allclose(layer_rows["q"], q)
    assert (block_rows["n_tests"] == 2).all() and (layer_rows["n_tests"] == 3).all()
    assert list(frame.columns) == list(tables.TIDY_COLUMNS)


def test_one_vs_two_table_categories_and_stale_nulls():
    layers = ["l1"]
    obs = [_one_vs_two_inputs([1, 0, 1, 1], ["least similar", "most similar", "most similar", "least similar"])]
    null = {"null": np.full(5, 0.5), "categories": ["most similar", "least similar"],
            "category_null": np.array([np.full(5, 0.6), np.full(5, 0.9)])}
    frame = tables.one_vs_two_table(layers, {"l1": "b"}, obs, [null], "m", "d", "s", 5, 0.05, group="all")
    rows = frame[frame["statistic"] == "1v2"].set_index("group")
    assert rows.at["all", "value"] == pytest.approx(0.75) and rows.at["most similar", "value"] == 0.5
    assert rows.at["most similar", "n_concepts"] == 2
    assert rows.at["least similar", "p"] == pytest.approx(1 / 6)  # 1.0 against a null of 0.9: (1 + 0) / (1 + 5)
    assert rows.at["most similar", "p"] == pytest.approx(1.0)  # 0.5 against a null of 0.6: (1 + 5) / (1 + 5)
    stale = dict(null, categories=["most similar"])
    with pytest.raises(ValueError, match="stale"):
        tables.one_vs_two_table(layers, {"l1": "b"}, obs, [stale], "m", "d", "s", 5, 0.05)


def test_constant_rows_make_the_value_undefined():
    obs = [dict(_one_vs_two_inputs([1, 1, 1]), n_constant=2)]
    null = {"null": np.full(4, 0.5), "categories": [], "category_null": np.zeros((0, 4))}
    frame = tables.one_vs_two_table(["l1"], {"l1": "b"}, obs, [null], "m", "d", "s", 4, 0.05)
    row = frame[frame["statistic"] == "1v2"].iloc[0]
    assert np.isnan(row["value"]) and np.isnan(row["p"]) and row["n_constant"] == 2 and not row["significant"]
    observed = pd.DataFrame({"group": ["0", "mean"], "value": [np.nan, np.nan], "n_ties": [0, 0],
                             "n_concepts": [5, 5], "n_constant": [3, 3]})
    two = tables.two_vs_two_table(["l1"], {}, [observed], [{"groups": np.full((1, 4), 0.5),
                                                            "mean": np.full(4, 0.5)}], "m", "d", "s", 4, 0.05)
    assert two["value"].isna().all() and two["p"].isna().all() and (two["n_constant"] == 3).all()


def test_concat_inserts_labels_in_front():
    a, b = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3]})
    out = tables.concat_tables([a, b], {"model": ["m1", "m2"], "set": ["s1", "s2"]})
    assert list(out.columns) == ["set", "model", "x"]
    assert out["model"].tolist() == ["m1", "m1", "m2"] and out["x"].tolist() == [1, 2, 3]
    assert tables.concat_tables([]).empty
