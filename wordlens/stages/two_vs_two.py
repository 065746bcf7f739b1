"""Stages of ``rules/two_vs_two.smk``: the 2 vs. 2 test per layer, its permutation null in
chunks, the tidy table with BHY across layers, and the table of every analysis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from wordlens import io as wio


def _groups(corr: Sequence[str], concept_table: str, other_tables: Sequence[str]):
    """The aligned matrices of every image group (:func:`wordlens.encoding.aligned_groups`)."""
    from wordlens.activations import LayerCorrelation
    from wordlens.concepts import analysed_concepts, read_concept_table
    from wordlens.encoding import aligned_groups

    table = read_concept_table(concept_table)
    analysed = analysed_concepts(table, [read_concept_table(t) for t in other_tables])
    return aligned_groups([LayerCorrelation.load(p) for p in corr], table, analysed)


def score_two_vs_two(*, corr: Sequence[str], concept_table: str, other_tables: Sequence[str] = (), observed: str,
                     concepts: str) -> None:
    """Observed 2 vs. 2 of one layer per group and averaged; per-concept accuracy (mean over groups)."""
    from wordlens.encoding import two_vs_two_groups

    ids, A, B, n_constant = _groups(corr, concept_table, other_tables)
    frame, per_concept = two_vs_two_groups(A, B, n_constant)
    wio.write_parquet(frame, observed)
    wio.write_parquet(pd.DataFrame({"concept": ids, "accuracy": np.mean(per_concept, axis=0),
                                    "accuracy_sd": np.std(per_concept, axis=0)}), concepts)


def permute_two_vs_two(*, corr: Sequence[str], concept_table: str, other_tables: Sequence[str] = (), null: str,
                       start: int, stop: int, seed: int, device: str = "auto", dtype: str = "float64") -> None:
    """Permutations [start, stop) of the 2 vs. 2 null of one layer, per group and for the group mean."""
    from wordlens.encoding import two_vs_two_group_null

    _, A, B, _ = _groups(corr, concept_table, other_tables)
    per_group, mean = two_vs_two_group_null(A, B, start, stop, seed, device=device, dtype=dtype)
    with wio.atomic_path(null, suffix=".npz") as tmp:
        np.savez(tmp, groups=per_group, mean=mean, start=start, stop=stop, seed=seed)


def gather_two_vs_two(*, layers: Sequence[str], blocks: Sequence[str], observed: Sequence[str],
                      nulls: Sequence[str], table: str, model: str, ds_model: str, image_set: str,
                      n_permutations: int, alpha: float) -> None:
    """The tidy 2 vs. 2 table of one (model, DS model, image set): p-values and BHY across layers.

    ``nulls`` are the null chunks of every layer; ``blocks[i]`` is the block of ``layers[i]``.
    """
    from wordlens.stages import chunks_by_layer
    from wordlens.tables import load_null_chunks, two_vs_two_table

    null_dists = []
    for files in chunks_by_layer(nulls, layers).values():
        chunks = [dict(np.load(p)) for p in files]
        null_dists.append({"groups": load_null_chunks(chunks, n_permutations, "groups"),
                           "mean": load_null_chunks(chunks, n_permutations, "mean")})
    frame = two_vs_two_table(layers, dict(zip(layers, blocks)), [pd.read_parquet(p) for p in observed], null_dists,
                             model, ds_model, image_set, n_permutations, alpha)
    wio.write_parquet(frame, table)


def concat_two_vs_two(*, tables: Sequence[str], table: str) -> None:
    """The 2 vs. 2 tables of every (model, image set, DS model) as one."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)
