"""wordlens.categories: concept rows, reference distances, shared concepts, the random
projection of image rows, the noise category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform

from wordlens import categories as C
from wordlens.concepts import write_concept_table


def _manifest():
    # rows 0..5; concepts in class order b (index 0), a (index 1); rows interleaved
    return pd.DataFrame({"concept": ["a", "b", "a", "b", "c", "c"], "class_index": [1, 0, 1, 0, 2, 2],
                         "row": [0, 1, 2, 3, 4, 5]})


def test_concept_rows_are_in_class_order_with_their_cache_rows():
    ids, rows = C.concept_rows(_manifest().sample(frac=1, random_state=0))
    assert ids == ["b", "a", "c"]
    assert [r.tolist() for r in rows] == [[1, 3], [0, 2], [4, 5]]


def _concept_table(tmp_path, vectors: dict[str, list[float] | None]):
    rows = [{"class_index": i, "class_id": c, "synonyms": [c], "matched": v is not None,
             "synonym_index": 0 if v is not None else -1, "matched_synonym": c if v is not None else None,
             "matched_term": c if v is not None else None, "vector": v} for i, (c, v) in enumerate(vectors.items())]
    path = tmp_path / "concepts.parquet"
    write_concept_table(pd.DataFrame(rows), path)
    return path


def test_ds_reference_is_the_word_vectors_distance_over_the_matched_concepts(tmp_path):
    rng = np.random.default_rng(0)
    vecs = {c: rng.normal(size=6).astype(np.float32).tolist() for c in "abcd"}
    vecs["e"] = None  # not matched: left out
    path = _concept_table(tmp_path, vecs)
    ids, D = C.reference_distances("ds", ["d", "e", "a", "b", "c"], concept_table=str(path), distance="cosine")
    assert ids == ["d", "a", "b", "c"]
    V = np.array([vecs[c] for c in ids], dtype=np.float64)
    cos = (V @ V.T) / np.outer(np.linalg.norm(V, axis=1), np.linalg.norm(V, axis=1))
    np.testing.assert_allclose(D, 0.5 * (1 - cos), atol=1e-6)
    ids, D = C.reference_distances("ds", ["a", "b", "c"], concept_table=str(path), distance="correlation")
    np.testing.assert_allclose(D, 1 - np.corrcoef(np.array([vecs[c] for c in ids])), atol=1e-6)


def test_ds_reference_with_too_few_matched_concepts_is_an_error(tmp_path):
    path = _concept_table(tmp_path, {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": None})
    with pytest.raises(ValueError, match=r"fm/w2v: 2 concept\(s\) \['a', 'b'\]; a hierarchy needs at least 3"):
        C.reference_distances("ds", ["a", "b", "c"], concept_table=str(path), what="fm/w2v")


def test_hierarchy_reference_and_its_missing_concepts(tmp_path):
    f = tmp_path / "h.tsv"
    f.write_text("child\tparent\nx\tleft\ny\tleft\nz\tright\nleft\troot\nright\troot\n")
    ids, D = C.reference_distances("hierarchy", ["x", "y", "z"], hierarchy=str(f), tree_distance="path")
    # by hand: x–y through left (2 edges), x–z and y–z through root (4 edges)
    np.testing.assert_array_equal(D, [[0, 2, 4], [2, 0, 4], [4, 4, 0]])
    with pytest.raises(ValueError, match="w"):
        C.reference_distances("hierarchy", ["x", "y", "w"], hierarchy=str(f))


def test_wordnet_reference_refuses_concepts_that_are_not_wordnet_ids():
    with pytest.raises(ValueError, match=r"concept 'Trouser' is not a WordNet noun id"):
        C.reference_distances("wordnet", ["n02084071", "Trouser", "n02121808"], data_noun="nowhere/data.noun",
                              what="fm/wordnet")


def test_unknown_reference_kind():
    with pytest.raises(ValueError, match="unknown reference kind 'glove'"):
        C.reference_distances("glove", ["a", "b", "c"])


def test_common_hierarchies_restrict_both_to_the_shared_concepts_in_layer_order():
    rng = np.random.default_rng(1)
    layer_ids, ref_ids = ["a", "b", "c", "d", "e"], ["e", "c", "x", "a", "b"]
    P, Q = rng.random((5, 3)), rng.random((5, 3))
    Dl = np.linalg.norm(P[:, None] - P[None], axis=2)
    Dr = np.linalg.norm(Q[:, None] - Q[None], axis=2)
    ids, Zl, Zr = C.common_hierarchies(layer_ids, Dl, ref_ids, Dr)
    assert ids == ["a", "b", "c", "e"]
    li, ri = [0, 1, 2, 4], [3, 4, 1, 0]
    np.testing.assert_allclose(Zl, linkage(squareform(Dl[np.ix_(li, li)], checks=False), "weighted"))
    np.testing.assert_allclose(Zr, linkage(squareform(Dr[np.ix_(ri, ri)], checks=False), "weighted"))
    with pytest.raises(ValueError, match="concepts in both"):
        C.common_hierarchies(["a", "b", "q"], Dl[:3, :3], ref_ids, Dr)


def test_project_rows_is_the_blockwise_gaussian_projection():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(7, 50)).astype(np.float32)
    np.testing.assert_array_equal(C.project_rows(X, dims=64), X.astype(np.float64))  # narrow: unchanged
    got = C.project_rows(X, dims=8, seed=3, block_features=16)
    R = np.concatenate([np.random.default_rng([3, a]).standard_normal((min(16, 50 - a), 8)) for a in range(0, 50, 16)])
    np.testing.assert_allclose(got, X.astype(np.float64) @ (R / np.sqrt(8)), rtol=1e-10)


def test_noise_vector_is_the_mean_layer_output_of_the_noise_images(tmp_path):
    import torch

    from conftest import make_fashion_mnist
    from wordlens.images import ImageSource, sample_manifest
    from wordlens.layers import feature_extractor
    from wordlens.models import model_from_config
    from wordlens.visualization import data_stats, noise_images

    make_fashion_mnist(tmp_path / "fm", per_class=3)
    image_set = {"kind": "fashion_mnist", "root": str(tmp_path / "fm"), "split": "test"}
    source = ImageSource.from_config("fm", image_set)
    man = sample_manifest(source, 2, seed=0)
    man_path = tmp_path / "manifest.parquet"
    man.to_parquet(man_path)
    model = {"arch": "fractalnet", "num_classes": 10,
             "arch_kwargs": {"n_blocks": 2, "n_columns": 2, "channels": [4, 8], "dropout": [0.0, 0.0],
                             "in_channels": 1},
             "preprocessing": {"channels": 1, "crop": 32, "resize": None, "mean": [0.5], "std": [0.5]}}
    got = C.noise_vector(manifest=str(man_path), model_name="m", model=model, image_set_name="fm",
                         image_set=image_set, layer="blocks.0.pool", n=5, seed=4, device="cpu", batch_size=2)
    got_c = C.noise_vector(manifest=str(man_path), model_name="m", model=model, image_set_name="fm",
                           image_set=image_set, layer="blocks.0.pool", n=5, seed=4, channel_mean=True, device="cpu")
    net, pre, _ = model_from_config("m", model, "cpu")
    mean, std = data_stats(man, source, pre)
    x = pre.normalize(torch.as_tensor(noise_images(5, pre.input_shape, mean, std, 4), dtype=torch.float32))
    with torch.no_grad():
        acts = feature_extractor(net, ["blocks.0.pool"])(x)["blocks.0.pool"].double()
    np.testing.assert_allclose(got, acts.flatten(1).mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(got_c, acts.mean(dim=(2, 3)).mean(0).numpy(), rtol=1e-6)
