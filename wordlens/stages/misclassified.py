"""Stages of ``rules/misclassified.smk``: misclassified images, their 1 vs. 2 test per
layer against correctly classified reference concepts, its null, and the tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wordlens import io as wio


def select_mistakes(*, manifest: str, predictions: str, concept_table: str, other_tables: Sequence[str] = (),
                    mistakes: str, n_reference: int, seed: int, image_set_name: str, image_set: Mapping[str, Any],
                    class_file: str | None = None) -> None:
    """The misclassified images to test and each one's reference concepts
    (:func:`wordlens.selection.select_mistakes`)."""
    from wordlens.concepts import analysed_concepts, class_ids, concept_vectors, read_concept_table
    from wordlens.images import ImageSource, read_manifest
    from wordlens.selection import select_mistakes as select

    read_manifest(manifest)  # checks the manifest's columns
    table = read_concept_table(concept_table)
    vocab = analysed_concepts(table, [read_concept_table(t) for t in other_tables])
    vectors = dict(zip(*concept_vectors(table, sorted(vocab))))
    ids = class_ids(ImageSource.from_config(image_set_name, image_set), class_file)
    wio.write_parquet(select(pd.read_parquet(predictions), vectors, ids, n_reference, seed), mistakes)


def score_misclassified(*, mistakes: str, h5: str, concept_table: str, observed: str,
                        reference_h5: str | None = None) -> None:
    """The 1 vs. 2 matrices and outcome of one layer (:func:`wordlens.encoding.one_vs_two_matrices`)."""
    from wordlens.concepts import read_concept_table
    from wordlens.encoding import one_vs_two_matrices

    arrays = one_vs_two_matrices(pd.read_parquet(mistakes), h5, read_concept_table(concept_table),
                                 reference_h5=reference_h5)
    with wio.atomic_path(observed, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def permute_misclassified(*, observed: str, null: str, start: int, stop: int, seed: int, device: str = "auto",
                          dtype: str = "float64") -> None:
    """Permutations [start, stop) of the 1 vs. 2 null of one layer, overall and per category."""
    from wordlens.encoding import one_vs_two_category_nulls

    with np.load(observed) as z:
        img, wt, wp, category = z["img"], z["true"], z["pred"], z["category"]
    overall, cats, per_category = one_vs_two_category_nulls(img, wt, wp, category, start, stop, seed,
                                                            device=device, dtype=dtype)
    with wio.atomic_path(null, suffix=".npz") as tmp:
        np.savez(tmp, null=overall, categories=np.array(cats, dtype=str), category_null=per_category, start=start,
                 stop=stop, seed=seed)


def gather_misclassified(*, layers: Sequence[str], blocks: Sequence[str], observed: Sequence[str],
                         nulls: Sequence[str], table: str, model: str, ds_model: str, image_set: str,
                         n_permutations: int, alpha: float, group: str = "mistakes") -> None:
    """The tidy 1 vs. 2 table of one (model, DS model, image set) (:func:`wordlens.tables.one_vs_two_table`)."""
    from wordlens.stages import chunks_by_layer
    from wordlens.tables import load_null_chunks, one_vs_two_table

    obs, null_dists = [], []
    for path, files in zip(observed, chunks_by_layer(nulls, layers).values()):
        with np.load(path) as z:
            obs.append({k: z[k] for k in z.files})
        chunks = [dict(np.load(p)) for p in files]
        with np.load(files[0]) as z:
            categories = [str(c) for c in z["categories"]]
        null_dists.append({"null": load_null_chunks(chunks, n_permutations),
                           "category_null": load_null_chunks(chunks, n_permutations, "category_null"),
                           "categories": categories})
    frame = one_vs_two_table(layers, dict(zip(layers, blocks)), obs, null_dists, model, ds_model, image_set,
                             n_permutations, alpha, group=group)
    wio.write_parquet(frame, table)


def concat_misclassified(*, tables: Sequence[str], table: str) -> None:
    """The 1 vs. 2 tables of the misclassified images of every analysis as one."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)


def concat_mistakes(*, tables: Sequence[str], labels: Mapping[str, Sequence[str]], table: str) -> None:
    """Every analysis's mistakes as one table, labelled by ``labels`` (column → value per table)."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables], labels), table)
