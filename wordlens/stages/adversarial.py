"""Stages of ``rules/adversarial.smk``: targeted MIM attacks, the adversarial image set,
and 1 vs. 2 of the adversarial images per layer and similarity category.

The adversarial images' matrices, nulls and tables are made exactly as the misclassified
images' (:mod:`wordlens.stages.misclassified`), against clean reference images.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from wordlens import io as wio
from wordlens.stages import misclassified

log = logging.getLogger(__name__)


def select_attacks(*, predictions: str, concept_tables: Sequence[str], attacks: str, image_set_name: str,
                   image_set: Mapping[str, Any], class_file: str | None, n_sources: int, n_targets: int,
                   sources_per_job: int, seed: int) -> None:
    """Source images and their targets (:func:`wordlens.selection.select_attacks`).

    ``concept_tables[0]`` is the DS model that chooses the targets; the others restrict
    the concepts when the config intersects DS models.
    """
    from wordlens.concepts import analysed_concepts, class_ids, read_concept_table, word_similarity
    from wordlens.images import ImageSource
    from wordlens.selection import select_attacks as select

    tables = [read_concept_table(t) for t in concept_tables]
    ids = class_ids(ImageSource.from_config(image_set_name, image_set), class_file)
    vocab = set(analysed_concepts(tables[0], tables[1:]))
    similarity = word_similarity(tables[0], [c for c in ids if c in vocab])
    wio.write_parquet(select(pd.read_parquet(predictions), similarity, ids, n_sources, n_targets, sources_per_job,
                             seed), attacks)


def attack_images(*, model_name: str, model: Mapping[str, Any], image_set_name: str, image_set: Mapping[str, Any],
                  class_file: str | None, manifest: str, attacks: str, chunk: int, images: str, table: str,
                  attack: Mapping[str, Any], device: str = "auto") -> None:
    """Run the targeted attacks of one source chunk (:func:`wordlens.attacks.attack_manifest_images`);
    write the images and a table."""
    import torch

    from wordlens.attacks import AttackConfig, attack_manifest_images
    from wordlens.concepts import class_ids
    from wordlens.images import ImageSource, read_manifest
    from wordlens.models import ModelSpec

    todo = pd.read_parquet(attacks)
    todo = todo[todo["source_chunk"] == int(chunk)].reset_index(drop=True)
    source = ImageSource.from_config(image_set_name, image_set)
    clean, result, frame = attack_manifest_images(
        ModelSpec.from_config(model_name, dict(model)), source, read_manifest(manifest), todo,
        AttackConfig.from_config(dict(attack)), class_ids(source, class_file), device=device)
    with wio.atomic_path(images, suffix=".pt") as tmp:
        torch.save({"images": result.images.contiguous(), "clean": clean.contiguous(),
                    "attack": torch.tensor(todo["attack"].tolist(), dtype=torch.int64)}, tmp)
    wio.write_parquet(frame, table)
    log.info("chunk %s: %d of %d attacks reached their target", chunk, int(result.success.sum()), len(todo))


def gather_attacks(*, chunk_images: Sequence[str], chunk_tables: Sequence[str], concept_table: str, images: str,
                   table: str, manifest: str, grid: str, adv_set: str, model: str, image_set: str,
                   grid_sources: int = 5) -> None:
    """All attacks of a (model, image set): one tensor file, one table (failed attacks marked
    ``discarded``), the manifest of the adversarial image set (the successful attacks only)
    and the sample grid."""
    import torch

    from wordlens.attacks import gather_attack_chunks
    from wordlens.figures import adversarial_grid, concept_names

    parts = [torch.load(p, map_location="cpu", weights_only=True) for p in chunk_images]
    adv, clean, frame, adv_manifest = gather_attack_chunks(parts, [pd.read_parquet(p) for p in chunk_tables],
                                                           adv_set, model, image_set)
    with wio.atomic_path(images, suffix=".pt") as tmp:
        torch.save({"images": adv.contiguous(), "attack": torch.tensor(frame["attack"].tolist(), dtype=torch.int64)},
                   tmp)
    wio.write_parquet(frame, table)
    wio.write_parquet(adv_manifest, manifest)
    adversarial_grid(clean.numpy(), adv.numpy(), frame, grid, n_sources=grid_sources,
                     names=concept_names(concept_table))


def select_adversarial(*, manifest: str, predictions: str, concept_table: str, other_tables: Sequence[str] = (),
                       tests: str, n_reference: int, seed: int) -> None:
    """The 1 vs. 2 test cases of the successful adversarial images
    (:func:`wordlens.selection.adversarial_tests`)."""
    from wordlens.concepts import analysed_concepts, read_concept_table
    from wordlens.images import read_manifest
    from wordlens.selection import adversarial_tests

    vocab = set(analysed_concepts(read_concept_table(concept_table), [read_concept_table(t) for t in other_tables]))
    wio.write_parquet(adversarial_tests(read_manifest(manifest), pd.read_parquet(predictions), vocab, n_reference,
                                        seed), tests)


def score_adversarial(*, tests: str, h5: str, reference_h5: str, concept_table: str, observed: str) -> None:
    """The 1 vs. 2 matrices of one layer: adversarial images (rows of ``h5``) against clean
    reference images (rows of ``reference_h5``)."""
    misclassified.score_misclassified(mistakes=tests, h5=h5, concept_table=concept_table, observed=observed,
                                      reference_h5=reference_h5)


def permute_adversarial(*, observed: str, null: str, start: int, stop: int, seed: int, device: str = "auto",
                        dtype: str = "float64") -> None:
    """Permutations [start, stop) of the 1 vs. 2 null of one layer, overall and per similarity category."""
    misclassified.permute_misclassified(observed=observed, null=null, start=start, stop=stop, seed=seed,
                                        device=device, dtype=dtype)


def gather_adversarial(*, layers: Sequence[str], blocks: Sequence[str], observed: Sequence[str],
                       nulls: Sequence[str], table: str, model: str, ds_model: str, image_set: str,
                       n_permutations: int, alpha: float) -> None:
    """The tidy 1 vs. 2 table of the adversarial images: group "all" and each similarity category."""
    misclassified.gather_misclassified(layers=layers, blocks=blocks, observed=observed, nulls=nulls, table=table,
                                       model=model, ds_model=ds_model, image_set=image_set,
                                       n_permutations=n_permutations, alpha=alpha, group="all")


def concat_adversarial(*, tables: Sequence[str], table: str) -> None:
    """The adversarial 1 vs. 2 tables of every analysis as one."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)


def concat_attacks(*, tables: Sequence[str], table: str) -> None:
    """The attack tables of every (model, image set) as one."""
    from wordlens.tables import concat_tables

    wio.write_parquet(concat_tables([pd.read_parquet(p) for p in tables]), table)
